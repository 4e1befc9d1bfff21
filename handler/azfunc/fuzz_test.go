package azfunc

import (
	"bytes"
	"testing"
)

// Whatever the host (or anyone reaching the handler's port) sends, decoding answers a value or an
// error, never a panic.
func FuzzDecodeInvocation(f *testing.F) {
	for _, seed := range []string{
		timerPayload, timerMinValue, timerFirstRun, queueTwice, queueOnce, queueObject, httpPayload,
		`{"Data":{"shard":"\"{\\\"v\\\":1}\""},"Metadata":{"DequeueCount":"\"1\""}}`,
		`{"Data":null}`, `[]`, `{"Data":{"req":{"Body":"\"x\"","Headers":{"a":"b"}}}}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := DecodeInvocation(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, name := range []string{"msg", "timer", "req"} {
			_, _ = inv.QueueMessage(name)
			_, _ = inv.Timer(name)
			if r, err := inv.HTTPRequest(name); err == nil {
				_ = r.Header("Content-Type")
			}
		}
	})
}
