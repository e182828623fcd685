package cloacina_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloacina-go/cloacina"
)

// exampleStep is a task body for the examples; it records that it ran.
func exampleStep(name string) cloacina.TaskFunc {
	return func(_ context.Context, c *cloacina.Context) error {
		return c.Set(name, "done")
	}
}

func ExampleNewWorkflow() {
	wf, err := cloacina.NewWorkflow("etl").
		Description("nightly load").
		Task("load", exampleStep("load"), cloacina.DependsOn("transform")).
		Task("extract", exampleStep("extract")).
		Task("transform", exampleStep("transform"), cloacina.DependsOn("extract"),
			cloacina.Timeout(time.Minute),
			cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 5, Backoff: cloacina.BackoffLinear})).
		Task("report", exampleStep("report"), cloacina.DependsOn("load"), cloacina.When(cloacina.Always())).
		Build()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	// Tasks come in topological order, whatever the declaration order.
	for _, t := range wf.Tasks() {
		fmt.Printf("%-9s deps=%v attempts=%d when=%s\n", t.ID, t.Dependencies, t.Retry.MaxAttempts, t.Trigger)
	}
	// Output:
	// extract   deps=[] attempts=1 when=all_dependencies_completed
	// transform deps=[extract] attempts=5 when=all_dependencies_completed
	// load      deps=[transform] attempts=1 when=all_dependencies_completed
	// report    deps=[load] attempts=1 when=always
}

func ExampleWorkflowBuilder_Build() {
	_, err := cloacina.NewWorkflow("loop").
		Task("a", exampleStep("a"), cloacina.DependsOn("c")).
		Task("b", exampleStep("b"), cloacina.DependsOn("a")).
		Task("c", exampleStep("c"), cloacina.DependsOn("b")).
		Build()
	fmt.Println(errors.Is(err, cloacina.ErrCycle))
	fmt.Println(err)

	// Several problems are reported at once.
	_, err = cloacina.NewWorkflow("bad").
		Task("a", nil).
		Task("b", exampleStep("b"), cloacina.DependsOn("missing")).
		Build()
	fmt.Println(errors.Is(err, cloacina.ErrNilTask), errors.Is(err, cloacina.ErrMissingDependency))
	fmt.Println(err)
	// Output:
	// true
	// cloacina: dependency cycle: a -> b -> c -> a
	// true true
	// cloacina: nil task function: task "a"
	// cloacina: dependency on an unknown task: task "b" depends on "missing"
}

func ExampleContext_Insert() {
	c := cloacina.NewContext()
	fmt.Println(c.Insert("user", map[string]any{"id": 7, "name": "ada"}))
	err := c.Insert("user", "someone else")
	fmt.Println(errors.Is(err, cloacina.ErrKeyExists), err)
	fmt.Println(c)
	// Output:
	// <nil>
	// true cloacina: context key already exists: "user"
	// {"user":{"id":7,"name":"ada"}}
}

func ExampleContext_Update() {
	c := cloacina.NewContext()
	err := c.Update("count", 1)
	fmt.Println(errors.Is(err, cloacina.ErrKeyNotFound), err)
	_ = c.Set("count", 1)
	fmt.Println(c.Update("count", 2), c)
	// Output:
	// true cloacina: context key not found: "count"
	// <nil> {"count":2}
}

func ExampleGetAs() {
	c, err := cloacina.ContextFromJSON([]byte(`{"limit": 25, "target": {"table": "orders", "columns": ["id", "total"]}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	limit, err := cloacina.GetAs[int](c, "limit")
	fmt.Println(limit, err)

	type target struct {
		Table   string   `json:"table"`
		Columns []string `json:"columns"`
	}
	tg, err := cloacina.GetAs[target](c, "target")
	fmt.Printf("%+v %v\n", tg, err)

	_, err = cloacina.GetAs[string](c, "missing")
	fmt.Println(errors.Is(err, cloacina.ErrKeyNotFound))
	_, err = cloacina.GetAs[string](c, "limit")
	fmt.Println(err != nil)
	// Output:
	// 25 <nil>
	// {Table:orders Columns:[id total]} <nil>
	// true
	// true
}

func ExampleContextFrom() {
	type params struct {
		Day string `json:"day"`
	}
	c, err := cloacina.ContextFrom(params{Day: "2026-11-26"})
	fmt.Println(c, err)
	_, err = cloacina.ContextFrom([]string{"not", "an", "object"})
	fmt.Println(errors.Is(err, cloacina.ErrInvalidContext))
	// Output:
	// {"day":"2026-11-26"} <nil>
	// true
}

func ExampleMergeJSON() {
	dst := map[string]any{
		"config": map[string]any{"retries": 1, "region": "eu"},
		"tags":   []any{"a", "b"},
		"count":  1,
	}
	src := map[string]any{
		"config": map[string]any{"retries": 3},
		"tags":   []any{"c"},
		"extra":  true,
	}
	out, _ := json.Marshal(cloacina.MergeJSON(dst, src))
	fmt.Println(string(out))
	// Output:
	// {"config":{"region":"eu","retries":3},"count":1,"extra":true,"tags":["c"]}
}

func ExampleRetryPolicy_Delay() {
	policies := []cloacina.RetryPolicy{
		{Backoff: cloacina.BackoffFixed, InitialDelay: 2 * time.Second},
		{Backoff: cloacina.BackoffLinear, InitialDelay: time.Second},
		{Backoff: cloacina.BackoffExponential, InitialDelay: time.Second, MaxDelay: 10 * time.Second},
	}
	for _, p := range policies {
		fmt.Printf("%-11s", p.Backoff)
		for n := 1; n <= 5; n++ {
			fmt.Printf(" %v", p.Delay(n))
		}
		fmt.Println()
	}
	// Output:
	// fixed       2s 2s 2s 2s 2s
	// linear      1s 2s 3s 4s 5s
	// exponential 1s 2s 4s 8s 10s
}

func ExampleParseBackoff() {
	b, err := cloacina.ParseBackoff("Exponential")
	fmt.Println(b, err)
	_, err = cloacina.ParseBackoff("exponetial")
	fmt.Println(errors.Is(err, cloacina.ErrInvalidOption))
	// Output:
	// exponential <nil>
	// true
}

func ExampleWorkflow_Mermaid() {
	wf := cloacina.NewWorkflow("report.daily").
		Task("fetch-orders", exampleStep("orders")).
		Task("fetch-users", exampleStep("users")).
		Task("join", exampleStep("join"), cloacina.DependsOn("fetch-orders", "fetch-users")).
		Task("alert", exampleStep("alert"), cloacina.DependsOn("join"),
			cloacina.When(cloacina.Any(cloacina.Failed("join"), cloacina.ContextEquals("mode", "loud")))).
		MustBuild()
	fmt.Print(wf.Mermaid())
	// Output:
	// flowchart TD
	//     %% workflow: report.daily
	//     t0["fetch-orders"]
	//     t1["fetch-users"]
	//     t2["join"]
	//     t3["alert<br/>when: any(failed(join), context(mode equals #quot;loud#quot;))"]
	//     t0 --> t2
	//     t1 --> t2
	//     t2 --> t3
}

func ExampleWorkflow_DOT() {
	wf := cloacina.NewWorkflow("etl").
		Task("extract", exampleStep("extract")).
		Task("load", exampleStep("load"), cloacina.DependsOn("extract")).
		MustBuild()
	fmt.Print(wf.DOT())
	// Output:
	// digraph "etl" {
	//     rankdir=TB;
	//     node [shape=box];
	//     "extract";
	//     "load";
	//     "extract" -> "load";
	// }
}
