// Command eventing is a test oracle: it answers knbot's differential tests with the verdicts of
// Knative Eventing's own Go code (Trigger filters, Trigger webhook validation, sdk-go CESQL).
//
// Protocol: one JSON object per stdin line, exactly one JSON object per stdout line, in order.
// Output is flushed whenever no further input is buffered, so a batch streams back as one.
// The request and response shapes are documented with their types in test/oracle.ts.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"knative.dev/pkg/logging"
)

// request is the envelope of every input line; each op reads the fields it needs.
type request struct {
	ID         json.RawMessage `json:"id"`
	Op         string          `json:"op"`
	Filters    json.RawMessage `json:"filters"`
	Filter     json.RawMessage `json:"filter"`
	Event      json.RawMessage `json:"event"`
	Expression *string         `json:"expression"`
	// Encoding "binary" sends the event through an HTTP binary-mode hop first, as Knative's
	// data path does between broker ingress and broker filter; "" or "structured" uses it as parsed.
	Encoding string `json:"encoding"`
}

// errorResponse answers a line that could not be served at all.
type errorResponse struct {
	ID    json.RawMessage `json:"id"`
	Error string          `json:"error"`
}

func main() {
	ctx := logging.WithLogger(context.Background(), zap.NewNop().Sugar())
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)

	for {
		line, readErr := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if err := enc.Encode(serve(ctx, line)); err != nil {
				fmt.Fprintln(os.Stderr, "oracle: cannot write response:", err)
				os.Exit(1)
			}
		}
		if readErr != nil || in.Buffered() == 0 {
			if err := out.Flush(); err != nil {
				fmt.Fprintln(os.Stderr, "oracle: cannot flush:", err)
				os.Exit(1)
			}
		}
		if readErr != nil {
			if !errors.Is(readErr, io.EOF) {
				fmt.Fprintln(os.Stderr, "oracle: cannot read stdin:", readErr)
				os.Exit(1)
			}
			return
		}
	}
}

// serve answers one input line. It never panics: each op recovers what Knative's code throws.
func serve(ctx context.Context, line []byte) any {
	var req request
	dec := json.NewDecoder(bytes.NewReader(line))
	// A typo in a field name would otherwise read as an absent field and a wrong verdict.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return errorResponse{ID: readID(line), Error: "malformed request: " + err.Error()}
	}
	if req.ID == nil {
		req.ID = json.RawMessage("null")
	}
	switch req.Op {
	case "filter":
		return serveFilter(ctx, req)
	case "validate":
		return serveValidate(ctx, req)
	case "cesql":
		return serveCESQL(ctx, req)
	default:
		return errorResponse{ID: req.ID, Error: fmt.Sprintf("unknown op %q", req.Op)}
	}
}

// readID salvages the id of a line that did not decode as a request.
func readID(line []byte) json.RawMessage {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(line, &probe) != nil || probe.ID == nil {
		return json.RawMessage("null")
	}
	return probe.ID
}

// isNull reports whether a raw field is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
