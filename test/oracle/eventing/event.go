package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// parseEvent reads a JSON-format CloudEvent as sdk-go's structured-mode HTTP binding does
// (format.JSON.Unmarshal is json.Unmarshal into an Event). With validate it also applies the
// check broker ingress makes before accepting an event (event.Validate, 400 on failure).
func parseEvent(ctx context.Context, raw json.RawMessage, encoding string, validate bool) (*cloudevents.Event, error) {
	if isNull(raw) {
		return nil, errors.New("event: missing")
	}
	var e cloudevents.Event
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if validate {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("invalid event: %w", err)
		}
	}
	switch encoding {
	case "", "structured":
		return &e, nil
	case "binary":
		return binaryHop(ctx, &e)
	default:
		return nil, fmt.Errorf("unknown encoding %q (want structured or binary)", encoding)
	}
}

// binaryHop writes the event as a binary-mode HTTP request and reads it back, as it travels from
// broker ingress through the channel to broker filter: extensions arrive as strings.
func binaryHop(ctx context.Context, e *cloudevents.Event) (*cloudevents.Event, error) {
	ctx = binding.WithForceBinary(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://oracle.invalid/", nil)
	if err != nil {
		return nil, err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(e), req); err != nil {
		return nil, fmt.Errorf("binary encoding: %w", err)
	}
	msg := cehttp.NewMessageFromHttpRequest(req)
	defer func() { _ = msg.Finish(nil) }()
	out, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("binary decoding: %w", err)
	}
	return out, nil
}
