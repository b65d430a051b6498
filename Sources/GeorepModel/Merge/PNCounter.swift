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

    /// Σ (p − baseline p) − Σ (n − baseline n), each difference floored at zero.
    public var value: Int64 {
        slots.reduce(into: Int64(0)) { sum, entry in
            let base = baselines[entry.key] ?? CounterTotals()
            sum = sum &+ max(0, entry.value.p &- base.p) &- max(0, entry.value.n &- base.n)
        }
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
