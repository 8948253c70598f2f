package promtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the parsed metric families of one scrape.
type Families struct {
	Text string
	fams map[string]*dto.MetricFamily
}

// Scrape GETs url (a /metrics address) with client (nil: the default
// client) and parses the answer; any failure ends the test.
func Scrape(t testing.TB, client *http.Client, url string) Families {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v\n%s", url, resp.StatusCode, err, b)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatalf("scrape %s: %v\n%s", url, err, b)
	}
	return f
}

// Parse parses the Prometheus text format.
func Parse(text []byte) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return Families{}, fmt.Errorf("expfmt: %w", err)
	}
	return Families{Text: string(text), fams: fams}, nil
}

// Lint returns promlint's problems, one line each ("name: text").
func (f Families) Lint() ([]string, error) {
	probs, err := promlint.New(strings.NewReader(f.Text)).Lint()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(probs))
	for _, p := range probs {
		out = append(out, p.Metric+": "+p.Text)
	}
	return out, nil
}

// Has reports whether the family name exists.
func (f Families) Has(name string) bool { _, ok := f.fams[name]; return ok }

// Type is the family's type ("" when absent).
func (f Families) Type(name string) string {
	mf, ok := f.fams[name]
	if !ok {
		return ""
	}
	return strings.ToLower(mf.GetType().String())
}

// Names lists the families, sorted.
func (f Families) Names() []string {
	out := make([]string, 0, len(f.fams))
	for n := range f.fams {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Value is the value of the sample of family name whose labels include
// every name, value pair given (a counter's or gauge's value, a
// histogram's sample count); ok is false when there is none.
func (f Families) Value(name string, labels ...string) (v float64, ok bool) {
	mf, found := f.fams[name]
	if !found {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func matches(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Want fails the test unless the sample exists with value want.
func (f Families) Want(t testing.TB, want float64, name string, labels ...string) {
	t.Helper()
	v, ok := f.Value(name, labels...)
	switch {
	case !ok:
		t.Errorf("/metrics lacks %s%v", name, labels)
	case v != want:
		t.Errorf("%s%v = %v, want %v", name, labels, v, want)
	}
}
