package app

import "github.com/sedna-go/sedna/pkg/localcontroller/managers"

// The forwarders queue worker reports with their outbox class through the LC's reporter; without
// ReportAs they would fall back to the LC's own class and could crowd out stage reports.
var _ managers.OutboxReporter = (*reporter)(nil)
