package main

import (
	"fmt"
	"strconv"
	"strings"
)

// byteSize is a flag's size in bytes: a whole number of bytes, or of
// KiB, MiB or GiB ("32MiB"). It implements pflag.Value.
type byteSize int64

// sizeUnits are the units byteSize takes, largest first.
var sizeUnits = []struct {
	name string
	n    int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// String writes the size in the largest unit that holds it whole.
func (s byteSize) String() string {
	v := int64(s)
	for _, u := range sizeUnits {
		if v != 0 && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10)
}

// Set parses a size: digits, then an optional unit (B, KiB, MiB, GiB; any
// case), with no space or fraction.
func (s *byteSize) Set(text string) error {
	t := strings.TrimSpace(text)
	mult := int64(1)
	for _, u := range sizeUnits {
		if len(t) > len(u.name) && strings.EqualFold(t[len(t)-len(u.name):], u.name) {
			t, mult = t[:len(t)-len(u.name)], u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n > (1<<63-1)/mult || n < -(1<<63-1)/mult {
		return fmt.Errorf("%q: want a size in bytes, or with KiB, MiB or GiB (e.g. 32MiB)", text)
	}
	*s = byteSize(n * mult)
	return nil
}

// Type names the value in --help.
func (s *byteSize) Type() string { return "size" }
