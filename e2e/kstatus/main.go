// Command kstatus prints what Flux and Argo CD see as an object's health: the real
// kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus/status) applied to each object
// read from stdin (a JSON array, or JSON objects one after another), one JSON line
// {"name", "status", "message"} per object on stdout, in input order.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Name    string        `json:"name"`
	Status  status.Status `json:"status"`
	Message string        `json:"message"`
}

func compute(raw json.RawMessage) verdict {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil { // numbers as int64, as the API server's
		return verdict{Status: status.UnknownStatus, Message: "decoding: " + err.Error()}
	}
	res, err := status.Compute(u)
	if err != nil {
		return verdict{Name: u.GetName(), Status: status.UnknownStatus, Message: err.Error()}
	}
	return verdict{Name: u.GetName(), Status: res.Status, Message: res.Message}
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	var objects []json.RawMessage
	if trimmed := bytes.TrimSpace(input); err == nil && bytes.HasPrefix(trimmed, []byte("[")) {
		err = json.Unmarshal(trimmed, &objects)
	} else if err == nil {
		for dec := json.NewDecoder(bytes.NewReader(trimmed)); err == nil && dec.More(); {
			var raw json.RawMessage
			if err = dec.Decode(&raw); err == nil {
				objects = append(objects, raw)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for _, raw := range objects {
		_ = out.Encode(compute(raw))
	}
}
