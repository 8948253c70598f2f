package main

import (
	"math"
	"slices"
	"time"
)

// quantile of sorted durations, nearest-rank, in milliseconds.
func quantileMS(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Latency summarises publish→PUBACK times in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func latencyOf(samples []time.Duration) Latency {
	slices.Sort(samples)
	return Latency{
		Count: uint64(len(samples)),
		P50:   quantileMS(samples, 0.50),
		P99:   quantileMS(samples, 0.99),
		P999:  quantileMS(samples, 0.999),
		Max:   quantileMS(samples, 1),
	}
}
