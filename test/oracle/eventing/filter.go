package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.uber.org/zap"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
	"knative.dev/eventing/pkg/eventfilter/attributes"
	"knative.dev/eventing/pkg/eventfilter/subscriptionsapi"
	kjson "sigs.k8s.io/json"
)

type filterResponse struct {
	ID json.RawMessage `json:"id"`
	// Result is pass, fail, nofilter, panic, or error (request or event unusable).
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

func serveFilter(ctx context.Context, req request) filterResponse {
	spec, err := decodeSpec(req, func(data []byte, v any) error {
		// The broker filter reads Triggers through client-go, whose JSON decoding is this one:
		// case-sensitive keys, unknown keys dropped.
		return kjson.UnmarshalCaseSensitivePreserveInts(data, v)
	})
	if err != nil {
		return filterResponse{ID: req.ID, Result: "error", Error: err.Error()}
	}
	event, err := parseEvent(ctx, req.Event, req.Encoding, true)
	if err != nil {
		return filterResponse{ID: req.ID, Result: "error", Error: err.Error()}
	}
	result, panicked := decide(ctx, spec, *event)
	if panicked != "" {
		return filterResponse{ID: req.ID, Result: "panic", Error: panicked}
	}
	return filterResponse{ID: req.ID, Result: resultName(result)}
}

// decodeSpec reads the request's filters and filter into a TriggerSpec, through a Trigger-shaped
// document so that the decoder sees the fields where the API server would put them.
func decodeSpec(req request, unmarshal func([]byte, any) error) (eventingv1.TriggerSpec, error) {
	doc := map[string]map[string]json.RawMessage{"spec": {}}
	if !isNull(req.Filters) {
		doc["spec"]["filters"] = req.Filters
	}
	if !isNull(req.Filter) {
		doc["spec"]["filter"] = req.Filter
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return eventingv1.TriggerSpec{}, fmt.Errorf("trigger: %w", err)
	}
	var trigger eventingv1.Trigger
	if err := unmarshal(data, &trigger); err != nil {
		return eventingv1.TriggerSpec{}, fmt.Errorf("trigger: %w", err)
	}
	return trigger.Spec, nil
}

// decide picks the filter as (*Handler).filterEvent in pkg/broker/filter/filter_handler.go does
// (non-empty filters, else filter, else NoFilter), builds it with the same constructors, and runs
// it once. A panic while building or filtering is reported, not propagated.
func decide(ctx context.Context, spec eventingv1.TriggerSpec, event cloudevents.Event) (result eventfilter.FilterResult, panicked string) {
	var f eventfilter.Filter
	switch {
	case len(spec.Filters) > 0:
		panicked = recovering("building filters", func() {
			f = subscriptionsapi.CreateSubscriptionsAPIFilters(zap.NewNop(), spec.Filters)
		})
	case spec.Filter != nil:
		f = attributes.NewAttributesFilter(spec.Filter.Attributes)
	default:
		return eventfilter.NoFilter, ""
	}
	if panicked != "" {
		return eventfilter.NoFilter, panicked
	}
	// all/any filters start a goroutine each; Cleanup stops them. Knative's own Cleanup panics on a
	// not-filter whose child did not materialise, which is no verdict of ours: ignore it.
	defer recovering("cleanup", func() { cleanup(f) })
	panicked = recovering("filtering", func() { result = f.Filter(ctx, event) })
	return result, panicked
}

// recovering runs fn and returns the message of a panic it raised, or "".
func recovering(stage string, fn func()) (panicked string) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("%s: %v", stage, r)
		}
	}()
	fn()
	return ""
}

func resultName(r eventfilter.FilterResult) string {
	switch r {
	case eventfilter.PassFilter:
		return "pass"
	case eventfilter.FailFilter:
		return "fail"
	default:
		return "nofilter"
	}
}

// cleanup runs f.Cleanup with every all/any filter in f locked. A failed match makes such a filter
// start a goroutine that swaps its children under the filter's lock, while Cleanup reads the children
// without it: the race can tear an interface value and crash the process. Swaps held up here run
// after Cleanup, on filters nothing uses any more.
func cleanup(f eventfilter.Filter) {
	locks := lockedMutexes(reflect.ValueOf(f), nil)
	defer func() {
		for _, m := range locks {
			m.Unlock()
		}
	}()
	f.Cleanup()
}

// lockedMutexes locks the unexported rwMutex of every all/any filter under v, outermost first.
func lockedMutexes(v reflect.Value, locks []*sync.RWMutex) []*sync.RWMutex {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return locks
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return locks
	}
	if m := v.FieldByName("rwMutex"); m.IsValid() && m.Type() == reflect.TypeOf(sync.RWMutex{}) && m.CanAddr() {
		mu := (*sync.RWMutex)(unsafe.Pointer(m.UnsafeAddr()))
		mu.Lock()
		locks = append(locks, mu)
	}
	if children := v.FieldByName("filters"); children.IsValid() && children.Kind() == reflect.Slice {
		for i := 0; i < children.Len(); i++ {
			locks = lockedMutexes(children.Index(i).FieldByName("filter"), locks)
		}
	}
	if inner := v.FieldByName("filter"); inner.IsValid() {
		locks = lockedMutexes(inner, locks)
	}
	return locks
}
