// Command serving is a test oracle: it answers knbot's differential tests with the verdicts of
// Knative Serving's own Go code for serving.knative.dev/v1 Services, run as the serving webhook
// runs it on create: (*Service).SetDefaults, then (*Service).Validate, in a context carrying the
// cluster's config-defaults, config-features and config-autoscaler.
//
// Usage: serving -config-dir DIR, where DIR holds defaults.yaml, features.yaml and autoscaler.yaml
// (the ConfigMaps as Knative ships them; knbot passes ../shared/knative/serving).
//
// Protocol: one JSON object per stdin line, exactly one JSON object per stdout line, in order.
// Output is flushed whenever no further input is buffered, so a batch streams back as one.
// The request and response shapes are documented with their types in test/oracle/serving.ts.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"knative.dev/pkg/logging"
)

// request is the envelope of every input line.
type request struct {
	ID     json.RawMessage `json:"id"`
	Op     string          `json:"op"`
	Object json.RawMessage `json:"object"`
	// Config overrides keys of the loaded ConfigMaps for this request only:
	// {"config-features": {"kubernetes.podspec-securitycontext": "enabled"}}.
	Config map[string]map[string]string `json:"config"`
	// User, when set, is the requesting user's name: SetDefaults then records it in the
	// serving.knative.dev/creator and lastModifier annotations, as the webhook does.
	User *string `json:"user"`
}

// errorResponse answers a line that could not be served at all.
type errorResponse struct {
	ID    json.RawMessage `json:"id"`
	Error string          `json:"error"`
}

func main() {
	configDir := flag.String("config-dir", "", "directory with defaults.yaml, features.yaml and autoscaler.yaml")
	flag.Parse()
	if *configDir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: serving -config-dir DIR")
		os.Exit(2)
	}
	base, err := loadConfigMaps(*configDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(1)
	}
	baseConfig, err := buildConfig(base, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(1)
	}
	o := &oracle{base: base, baseConfig: baseConfig}

	ctx := logging.WithLogger(context.Background(), zap.NewNop().Sugar())
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)

	for {
		line, readErr := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if err := enc.Encode(o.serve(ctx, line)); err != nil {
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

// serve answers one input line. It never panics: a panic in Knative's code becomes an error response.
func (o *oracle) serve(ctx context.Context, line []byte) (resp any) {
	var req request
	dec := json.NewDecoder(bytes.NewReader(line))
	// A typo in a field name would otherwise read as an absent field and a wrong verdict.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return errorResponse{ID: readID(line), Error: "malformed request: " + err.Error()}
	}
	if dec.More() {
		return errorResponse{ID: readID(line), Error: "malformed request: more than one JSON value on the line"}
	}
	if req.ID == nil {
		req.ID = json.RawMessage("null")
	}
	defer func() {
		if p := recover(); p != nil {
			resp = errorResponse{ID: req.ID, Error: fmt.Sprintf("panic: %v", p)}
		}
	}()
	switch req.Op {
	case "validate":
		return o.serveValidate(ctx, req)
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
