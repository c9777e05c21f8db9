package kubeedge

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// counters are the packet and byte counts iptables-save prints per chain, which change with
// traffic; comments are its timestamps.
var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// IptablesSnapshot is this machine's IPv4 rules (iptables-save, every table) without counters and
// comments, for comparing what a test leaves behind with what was there before it.
func IptablesSnapshot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "iptables-save").Output()
	if err != nil {
		return "", fmt.Errorf("iptables-save: %w", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		lines = append(lines, counters.ReplaceAllString(l, "[0:0]"))
	}
	return strings.Join(lines, "\n"), nil
}
