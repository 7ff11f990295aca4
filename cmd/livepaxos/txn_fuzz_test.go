package main

import (
	"errors"
	"strings"
	"testing"
)

// FuzzTxnJSON: whatever txn --json reads is either one MultiOp, with
// every op and test of a known kind and a key, or a usage error (exit 2).
// Never a panic.
func FuzzTxnJSON(f *testing.F) {
	for _, s := range []string{
		`{"guard":[{"op":"absent","key":"k"}],"then":[{"op":"put","key":"k","value":"v"}],"else":[{"op":"get","key":"k"}]}`,
		`{"guard":[{"op":"equals","key":"k","value":"v"}],"then":[{"op":"del","key":"k"}]}`,
		`{"guard":[{"op":"epoch","key":"7"}]}`, `{} {}`, `{"then":[{"op":"put","key":"k"}]}`, `[`, `{"x":1}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		txn, err := readTxnJSON(strings.NewReader(in))
		if err == nil {
			var op any
			op, err = txn.multiOp()
			if err == nil && op == nil {
				t.Fatalf("%q: no MultiOp and no error", in)
			}
		}
		if err != nil && !errors.Is(err, errUsage) {
			t.Fatalf("%q: %v is not a usage error", in, err)
		}
	})
}
