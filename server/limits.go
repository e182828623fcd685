package server

import (
	"container/list"
	"context"
	"net"
	"sync"
)

// bodyBudget is a weighted semaphore over the bytes of request bodies
// held at once (Config.MaxInFlightBodyBytes). Waiters are served first
// come, first served, so that a big body is not starved by small ones.
type bodyBudget struct {
	mu      sync.Mutex
	size    int64
	used    int64
	waiters list.List // of *budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when the bytes are granted
}

func newBodyBudget(size int64) *bodyBudget { return &bodyBudget{size: size} }

// acquire takes n bytes of the budget (n is clamped to its size, so that
// any one body fits), waiting until ctx ends. It returns the function
// that gives them back, to call once.
func (b *bodyBudget) acquire(ctx context.Context, n int64) (release func(), err error) {
	n = max(min(n, b.size), 0)
	b.mu.Lock()
	if b.used+n <= b.size && b.waiters.Len() == 0 {
		b.used += n
		b.mu.Unlock()
		return b.releaser(n), nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	el := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return b.releaser(n), nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: give it back.
			b.used -= n
		default:
			b.waiters.Remove(el)
		}
		b.grantLocked()
		b.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (b *bodyBudget) releaser(n int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.used -= n
			b.grantLocked()
			b.mu.Unlock()
		})
	}
}

// grantLocked wakes the waiters at the head of the queue that fit.
func (b *bodyBudget) grantLocked() {
	for {
		el := b.waiters.Front()
		if el == nil {
			return
		}
		w := el.Value.(*budgetWaiter)
		if b.used+w.n > b.size {
			return
		}
		b.used += w.n
		b.waiters.Remove(el)
		close(w.ready)
	}
}

// inUse returns the bytes held now (for tests).
func (b *bodyBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// LimitConnsPerClient returns a listener that keeps at most n connections
// open at once per client IP address: a connection over the limit is
// closed as soon as it is accepted, before anything is read from it, and
// the listener goes on accepting. It bounds the file descriptors and
// goroutines that one client can hold (such as connections trickling a
// body). Clients behind one proxy or NAT share an address, so choose n
// for them. n < 1 returns ln unchanged.
//
//	ln, err := net.Listen("tcp", addr)
//	...
//	err = httpServer.Serve(server.LimitConnsPerClient(ln, 64))
func LimitConnsPerClient(ln net.Listener, n int) net.Listener {
	if n < 1 {
		return ln
	}
	return &connLimiter{Listener: ln, max: n, open: map[string]int{}}
}

// connLimiter is the listener of LimitConnsPerClient.
type connLimiter struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[string]int // by client IP
}

// Accept returns the next connection whose client is under the limit.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c.RemoteAddr())
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.mu.Unlock()
			// Refused: a reset tells the client at once, without a
			// lingering close.
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// clientIP is the host part of a remote address.
func clientIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes the connection when the wrapped one can (as a
// *net.TCPConn can): net/http sends a refused request's answer and then a
// FIN this way, so that the client reads the answer before the reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
