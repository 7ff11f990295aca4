// Package defaults fills in options left unset. The packages whose
// configurations are sizes, counts and durations (db, storage, client)
// share it, so that "unset" means one thing everywhere: not positive.
package defaults

// number is what an option with a positive default is: a size, a count or
// a duration.
type number interface {
	~int | ~int32 | ~int64 | ~uint32 | ~uint64 | ~float64
}

// Positive sets *v to def unless *v is positive: a size, count or duration
// left zero takes its default, and so does a negative one, which no such
// option may be.
func Positive[T number](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
