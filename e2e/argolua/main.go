// Command argolua runs Argo CD resource health scripts the way Argo CD runs them, for
// the tests: each script in a fresh gopher-lua state (the interpreter Argo CD embeds)
// with only the package, base and table libraries open, the object as the global
// `obj`, a one-second deadline, and the returned table read as {status, message}; a
// status Argo CD does not know becomes Unknown, as in Argo CD.
//
// Input on stdin: a JSON array of {"script": "<lua>", "object": {...}}. Output on
// stdout: one JSON line {"status", "message", "error"} per item, in input order.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

type item struct {
	Script string         `json:"script"`
	Object map[string]any `json:"object"`
}

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

// The statuses Argo CD accepts from a health script (gitops-engine's HealthStatusCode).
var known = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// toLua turns decoded JSON into Lua values as Argo CD does: objects become tables keyed
// by string, arrays tables indexed from 1, numbers LNumber, null nil.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case map[string]any:
		table := l.NewTable()
		for key, inner := range v {
			table.RawSetString(key, toLua(l, inner))
		}
		return table
	case []any:
		table := l.NewTable()
		for i, inner := range v {
			table.RawSetInt(i+1, toLua(l, inner))
		}
		return table
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}

func run(it item) health {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for name, open := range map[string]lua.LGFunction{
		lua.LoadLibName: lua.OpenPackage,
		lua.BaseLibName: lua.OpenBase,
		lua.TabLibName:  lua.OpenTable,
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(open), NRet: 0, Protect: true}, lua.LString(name)); err != nil {
			return health{Status: "Unknown", Error: err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, it.Object))
	if err := l.DoString(it.Script); err != nil {
		return health{Status: "Unknown", Error: err.Error()}
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return health{Status: "Unknown", Error: fmt.Sprintf("expect table output from Lua script, not %s", l.Get(-1).Type())}
	}
	out := health{}
	if s, ok := table.RawGetString("status").(lua.LString); ok {
		out.Status = string(s)
	}
	if m, ok := table.RawGetString("message").(lua.LString); ok {
		out.Message = string(m)
	}
	if !known[out.Status] {
		return health{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return out
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	var items []item
	if err == nil {
		err = json.Unmarshal(input, &items)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "argolua: reading stdin:", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, it := range items {
		if err := enc.Encode(run(it)); err != nil {
			fmt.Fprintln(os.Stderr, "argolua:", err)
			os.Exit(1)
		}
	}
}
