/// A PN-counter: each writer slot's running totals, merged by maximum, minus delete baselines.
public struct PNCounter: Hashable, Sendable {
    /// Slot → the highest running totals seen.
    public private(set) var slots: [String: CounterTotals]
    /// Slot → the totals observed by the latest deletes: what a delete reset.
    public private(set) var baselines: [String: CounterTotals]

    /// A counter at zero.
    public init() {
        slots = [:]
        baselines = [:]
    }

    /// Records a slot's running totals.
    public mutating func record(_ totals: CounterTotals, slot: String) {
        slots[slot] = totals.joined(with: slots[slot] ?? totals)
    }

    /// Records a delete's baseline for a slot.
    public mutating func recordBaseline(_ totals: CounterTotals, slot: String) {
        baselines[slot] = totals.joined(with: baselines[slot] ?? totals)
    }

    /// The slot's totals (zero when unknown).
    public func totals(of slot: String) -> CounterTotals {
        slots[slot] ?? CounterTotals()
    }

    /// Σ (p − baseline p) − Σ (n − baseline n), each difference floored at zero, computed
    /// exactly and then saturated to the 64-bit range: regions that increment concurrently can
    /// take the exact sum past it, and every region then reads the same bound (never a wrapped
    /// value); decrements bring it back, as the exact sum is kept in the slots.
    public var value: Int64 {
        var sum: Int64 = 0
        var carries = 0  // the exact sum is sum + carries × 2^64
        func add(_ term: Int64) {
            let (result, overflow) = sum.addingReportingOverflow(term)
            sum = result
            if overflow { carries += term > 0 ? 1 : -1 }
        }
        for (slot, totals) in slots {
            let base = baselines[slot] ?? CounterTotals()
            add(max(0, totals.p - base.p))  // both in 0...Int64.max: no overflow
            add(-max(0, totals.n - base.n))
        }
        return carries > 0 ? .max : carries < 0 ? .min : sum
    }

    /// Merges per slot by maximum.
    public mutating func merge(_ other: PNCounter) {
        slots.merge(other.slots) { $0.joined(with: $1) }
        baselines.merge(other.baselines) { $0.joined(with: $1) }
    }

    /// The merge of two counters.
    public func merging(_ other: PNCounter) -> PNCounter {
        var copy = self
        copy.merge(other)
        return copy
    }
}
