package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// registerWorkqueueMetrics exposes client-go's workqueue metrics (depth, adds, latency, retries)
// per named queue.
func registerWorkqueueMetrics(reg prometheus.Registerer) {
	workqueue.SetProvider(&workqueueProvider{reg: reg})
}

type workqueueProvider struct{ reg prometheus.Registerer }

func (p *workqueueProvider) gauge(name, help, queue string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "sedna_gm", Subsystem: "workqueue", Name: name, Help: help,
		ConstLabels: prometheus.Labels{"name": queue}})
	p.register(g)
	return g
}

func (p *workqueueProvider) register(c prometheus.Collector) {
	if err := p.reg.Register(c); err != nil {
		// Queues with the same name (a restarted leader term) reuse the registered collector.
		if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
			panic(err)
		}
	}
}

func (p *workqueueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.gauge("depth", "Current depth of the workqueue.", name)
}

func (p *workqueueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sedna_gm", Subsystem: "workqueue", Name: "adds_total",
		Help: "Adds to the workqueue.", ConstLabels: prometheus.Labels{"name": name}})
	p.register(c)
	return c
}

func (p *workqueueProvider) histogram(metric, help, queue string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "sedna_gm", Subsystem: "workqueue", Name: metric,
		Help: help, ConstLabels: prometheus.Labels{"name": queue}, Buckets: prometheus.ExponentialBuckets(1e-6, 10, 10)})
	p.register(h)
	return h
}

func (p *workqueueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.histogram("queue_duration_seconds", "Time an item waits in the workqueue.", name)
}

func (p *workqueueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.histogram("work_duration_seconds", "Time processing an item takes.", name)
}

func (p *workqueueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.gauge("unfinished_work_seconds", "Seconds of work in progress.", name)
}

func (p *workqueueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.gauge("longest_running_processor_seconds", "Seconds the longest processor has run.", name)
}

func (p *workqueueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sedna_gm", Subsystem: "workqueue", Name: "retries_total",
		Help: "Retries handled by the workqueue.", ConstLabels: prometheus.Labels{"name": name}})
	p.register(c)
	return c
}
