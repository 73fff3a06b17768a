package lincheck

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/anishathalye/porcupine"
)

// pending is the return time of a write whose outcome is unknown: later than
// every other time of the history, so the write may take effect anywhere after
// its call, including after everything else, which is the same as never. (See
// operations for when a tighter time is equivalent.)
const pending = math.MaxInt64

// input is the argument of an operation on one register.
type input struct {
	set   bool
	value string // for a set
}

// register is the state of one key, and the output of a get.
type register struct {
	found bool
	value string
}

func (r register) String() string {
	if !r.found {
		return "absent"
	}
	return fmt.Sprintf("%q", r.value)
}

// registerModel is the sequential specification of one key: a register that
// starts absent, that a set overwrites and a get reads.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return register{} },
		Step: func(state, in, out any) (bool, any) {
			st, op := state.(register), in.(input)
			if op.set {
				return true, register{found: true, value: op.value}
			}
			return out.(register) == st, st
		},
		Hash: func(state any) uint64 {
			h := fnv.New64a()
			h.Write([]byte(state.(register).value))
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string {
			op := in.(input)
			if op.set {
				return fmt.Sprintf("set(%q)", op.value)
			}
			return "get() = " + out.(register).String()
		},
		DescribeState: func(state any) string { return state.(register).String() },
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return info.(string)
		},
	}
}

// operations converts the operations of one key to porcupine's form. Failed
// reads are left out. A failed write may take effect at any time after its
// call, so it never returns, except that two rewrites that keep the verdict
// spare the checker from trying every place for it:
//
//   - A failed write whose value no read returned is left out: it can always
//     go last, where nothing sees it, and wherever else a linearization puts
//     it, a later write hides it from every read.
//   - A failed write whose value is written by no other write returns when
//     the first read of its value returned: every linearization puts it
//     before all reads of its value, so before that read's return.
//
// Without them a history of a few hundred failed writes per key can take
// the checker minutes.
func operations(ops []Op) []porcupine.Operation {
	writers := make(map[string]int)     // writes of each value
	firstRead := make(map[string]int64) // earliest return of a read of each value
	for _, o := range ops {
		switch {
		case o.Kind == Set:
			writers[o.Value]++
		case o.Err == "" && o.Found:
			if r, ok := firstRead[o.Value]; !ok || o.Return < r {
				firstRead[o.Value] = o.Return
			}
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		p := porcupine.Operation{ClientId: o.Client, Call: o.Call, Return: o.Return}
		switch {
		case o.Kind == Set && o.Err != "":
			read, seen := firstRead[o.Value]
			switch {
			case !seen:
				continue
			case writers[o.Value] == 1 && read >= o.Call:
				p.Return = read
			default:
				p.Return = pending
			}
			p.Input, p.Output = input{set: true, value: o.Value}, register{}
			p.Metadata = fmt.Sprintf("failed at %d ns, outcome unknown: %s", o.Return, o.Err)
		case o.Kind == Set:
			p.Input, p.Output = input{set: true, value: o.Value}, register{}
		case o.Err != "":
			continue
		default:
			p.Input, p.Output = input{}, register{found: o.Found, value: o.Value}
		}
		out = append(out, p)
	}
	return out
}
