package certs_test

import (
	"context"
	"fmt"
	"os"

	"github.com/dualgate/dualgate/certs"
)

// The dev mode, the gateway's default: a local CA in the data directory
// and a leaf for localhost; the banner tells users how to trust it.
func ExampleNew_dev() {
	dir, err := os.MkdirTemp("", "dualgate-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	m, err := certs.New(context.Background(), &certs.Options{DataDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	info := m.Info()
	fmt.Println(info.Mode, info.Names, len(info.SPKIHash))
	fmt.Println(m.TLSConfig().NextProtos)
	// Output:
	// dev [localhost 127.0.0.1 ::1] 44
	// [http/1.1]
}

func ExampleParseNames() {
	names, err := certs.ParseNames("WWW.Example.com., api.example.com www.example.com")
	fmt.Println(names, err)
	// Output: [www.example.com api.example.com] <nil>
}

func ExampleInfo_Banner() {
	fmt.Println(certs.Info{Mode: certs.ModeOff}.Banner()[0])
	// Output: TLS: off (-tls off); wss:// is refused, use ws://
}
