package storage

import (
	"fmt"
	"testing"
)

const benchRecordBytes = 128

// BenchmarkAppendParallel measures durable appends of 128-byte records from
// many concurrent appenders, each waiting for its own record to be durable,
// as acceptors handling concurrent instances do. fsyncs/op below 1 is group
// commit at work.
func BenchmarkAppendParallel(b *testing.B) {
	for _, perProc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("goroutines=%dxGOMAXPROCS", perProc), func(b *testing.B) {
			w, _ := open(b, b.TempDir(), Options{})
			defer mustClose(b, w)
			payload := make([]byte, benchRecordBytes)
			b.SetBytes(benchRecordBytes)
			b.SetParallelism(perProc)
			before := w.Stats()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rec := [][]byte{payload}
				for pb.Next() {
					if err := w.AppendSync(rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			after := w.Stats()
			b.ReportMetric(float64(after.Fsyncs-before.Fsyncs)/float64(b.N), "fsyncs/op")
		})
	}
}

// BenchmarkAppendSerial is the baseline without concurrency: one fsync per
// record.
func BenchmarkAppendSerial(b *testing.B) {
	w, _ := open(b, b.TempDir(), Options{})
	defer mustClose(b, w)
	rec := [][]byte{make([]byte, benchRecordBytes)}
	b.SetBytes(benchRecordBytes)
	before := w.Stats()
	for b.Loop() {
		if err := w.AppendSync(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.Stats().Fsyncs-before.Fsyncs)/float64(b.N), "fsyncs/op")
}
