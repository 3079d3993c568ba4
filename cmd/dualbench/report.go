package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// texter is a result that can print itself as a table.
type texter interface {
	text(w io.Writer)
}

// printReport writes the human-readable form of rep.
func printReport(w io.Writer, rep *report) {
	fmt.Fprintf(w, "dualbench %s  %s  %d CPUs (%s, aes=%v)  %s  load1 %s  gateway pid %d\n",
		rep.Scenario, rep.Date, rep.Host.CPUs, rep.Host.CPUModel, rep.Host.AES, rep.Host.GoVersion, rep.Host.Load1, rep.Gateway.PID)
	if t, ok := rep.Result.(texter); ok {
		t.text(w)
	} else if rep.Result != nil {
		b, _ := json.MarshalIndent(rep.Result, "", "  ")
		fmt.Fprintf(w, "%s\n", b)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, f := range rep.Failures {
		fmt.Fprintln(w, "FAIL:", f)
	}
}

// text prints the throughput summary.
func (r *throughputResult) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\ttransport\tgateway MB/s\tws-bridge MB/s\ttcp-proxy MB/s\tgw/wsb\tgw/tcp\twsb/tcp\tgw CPU s/GB\twsb CPU s/GB\ttcp CPU s/GB\ttarget ≥1.1×wsb\ttarget ≥0.5×tcp\t")
	for _, s := range r.Summary {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n",
			formatSize(s.Size), s.Transport, s.GatewayMBps, s.WSBridgeMBps, s.TCPProxyMBps,
			s.GatewayVsWSBridge, s.GatewayVsTCPProxy, s.WSBridgeVsTCPProxy,
			s.GatewayCPUPerGB, s.WSBridgeCPUPerGB, s.TCPProxyCPUPerGB, dash(s.TargetVsWSBridge), dash(s.TargetVsTCPProxy))
	}
	tw.Flush()
	for _, run := range r.Runs {
		if run.Error != "" {
			fmt.Fprintf(w, "error: %s/%s size %s round %d: %s\n", run.System, run.Transport, formatSize(run.Size), run.Round, run.Error)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
