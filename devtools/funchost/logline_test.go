package funchost

import "testing"

func TestReadableLogLines(t *testing.T) {
	for in, want := range map[string]string{
		`{"level":"INFO","msg":"shard done","users":400,"failures":{"not_found":1},"user":"a b"}`: `INFO shard done users=400 failures={"not_found":1} user="a b"`,
		`plain text`:  `plain text`,
		`{not json`:   `{not json`,
		`{"msg":"x"}`: `x`,
	} {
		if got := readable(in); got != want {
			t.Errorf("readable(%s) = %s, want %s", in, got, want)
		}
	}
}
