package funchost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// readable renders a handler log line that is one JSON object ({"level":"INFO","msg":"…","k":v})
// as "INFO … k=v" for the terminal, keeping the fields' order; other lines are returned as they are.
// Azure keeps the JSON (Application Insights parses it); this is only what `make run` shows.
func readable(line string) string {
	if !strings.HasPrefix(line, "{") {
		return line
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return line
	}
	var level, msg string
	var fields []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return line
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return line
		}
		key, _ := k.(string)
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			s = string(compact(v))
		} else if strings.ContainsAny(s, " \"=") {
			s = fmt.Sprintf("%q", s)
		}
		switch key {
		case "level":
			level = strings.Trim(s, `"`)
		case "msg":
			msg = strings.Trim(s, `"`)
		default:
			fields = append(fields, key+"="+s)
		}
	}
	return strings.TrimSpace(strings.Join(append([]string{level, msg}, fields...), " "))
}

func compact(v json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return v
	}
	return b.Bytes()
}
