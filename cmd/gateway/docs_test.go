package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// TestFlagsDocumented keeps the README's flags table and docs/operations.md
// true to the binary: every flag must be listed in both, and neither may
// list a flag the binary does not have.
func TestFlagsDocumented(t *testing.T) {
	fs := newFlagSet(new(config), envMap(nil))
	for _, doc := range []string{"../../README.md", "../../docs/operations.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(text, "`-"+f.Name+"`") && !strings.Contains(text, "`-"+f.Name+" ") {
				t.Errorf("%s does not document -%s", doc, f.Name)
			}
		})
		if doc != "../../README.md" {
			continue
		}
		// The README's table rows name flags as `-name` or `-name ARG`.
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(line, "| `-") {
				continue
			}
			name := strings.TrimPrefix(line, "| `-")
			name = name[:strings.IndexAny(name, " `")]
			if fs.Lookup(name) == nil {
				t.Errorf("README.md documents -%s, which the gateway does not have", name)
			}
		}
	}
}
