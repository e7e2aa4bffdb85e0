package replicated

import (
	"reflect"
	"testing"

	"github.com/notp-go/notp/metrics"
)

func TestEmitterNamesAndLabelsEachSample(t *testing.T) {
	var got []metrics.Sample
	e := Emitter{Emit: func(s metrics.Sample) { got = append(got, s) }, Prefix: "notp_svc_", Name: "locks"}
	mode := metrics.Label{Name: "mode", Value: "read"}
	e.Counter("taken_total", "Taken.", 3, mode)
	e.Gauge("held", "Held.", -1)
	name := metrics.Label{Name: "name", Value: "locks"}
	want := []metrics.Sample{
		{Name: "notp_svc_taken_total", Help: "Taken.", Kind: metrics.Counter, Labels: []metrics.Label{name, mode}, Value: 3},
		{Name: "notp_svc_held", Help: "Held.", Kind: metrics.Gauge, Labels: []metrics.Label{name}, Value: -1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("samples\n got %+v\nwant %+v", got, want)
	}
}
