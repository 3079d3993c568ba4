package sniff_test

import (
	"errors"
	"fmt"

	"github.com/dualgate/dualgate/sniff"
)

func ExampleClassify() {
	for _, in := range []string{"D", "DGS1", "DELETE /x HTTP/1.1", "\x16\x03\x01", "\x00", "PRI * HTTP/2.0"} {
		kind, err := sniff.Classify([]byte(in))
		switch reason, rejected := sniff.RejectReason(err); {
		case errors.Is(err, sniff.ErrNeedMore):
			fmt.Printf("%q: need more\n", in)
		case rejected:
			fmt.Printf("%q: rejected: %s\n", in, reason)
		default:
			fmt.Printf("%q: %s\n", in, kind)
		}
	}
	// Output:
	// "D": need more
	// "DGS1": stream
	// "DELETE /x HTTP/1.1": http
	// "\x16\x03\x01": tls
	// "\x00": legacy
	// "PRI * HTTP/2.0": rejected: h2c-preface
}
