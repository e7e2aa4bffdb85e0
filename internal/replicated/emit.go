package replicated

import "github.com/notp-go/notp/metrics"

// Emitter writes a service's samples: every series is named
// Prefix+series and labelled name=<Name> before its own labels.
type Emitter struct {
	Emit   func(metrics.Sample)
	Prefix string // "notp_dlm_"
	Name   string // the service's Config.Name
}

// Counter emits a counter sample.
func (e Emitter) Counter(series, help string, v uint64, labels ...metrics.Label) {
	e.sample(series, help, metrics.Counter, float64(v), labels)
}

// Gauge emits a gauge sample.
func (e Emitter) Gauge(series, help string, v int64, labels ...metrics.Label) {
	e.sample(series, help, metrics.Gauge, float64(v), labels)
}

func (e Emitter) sample(series, help string, kind metrics.Kind, v float64, labels []metrics.Label) {
	all := append([]metrics.Label{{Name: "name", Value: e.Name}}, labels...)
	e.Emit(metrics.Sample{Name: e.Prefix + series, Help: help, Kind: kind, Labels: all, Value: v})
}
