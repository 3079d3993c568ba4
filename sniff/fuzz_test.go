package sniff_test

import (
	"testing"
)

func FuzzClassify(f *testing.F) {
	for _, tt := range classifyTests {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkPrefixes(t, in)
	})
}
