import GeorepModel
import PropertyBased
import Testing

/// Random CRDT values built from random operations over small domains, so that merges overlap.
enum CRDTGen {
    static let origins = ["us-east-1", "eu-west-1", "ap-southeast-1"]
    static let elements = ["a", "b", "c", "d"]

    static func stamp(_ rng: inout any SeededRandomNumberGenerator) -> Stamp {
        Fixtures.stamp(UInt64.random(in: 0..<20, using: &rng), origins.randomElement(using: &rng) ?? "x",
                       logical: UInt16.random(in: 0..<2, using: &rng))
    }

    static let register = Generator<LWWRegister<JSONValue>, Shrink.None<LWWRegister<JSONValue>>> { rng in
        let stamp = stamp(&rng)
        // The value is a function of the stamp: one event, one value.
        return LWWRegister(stamp: stamp, value: .string(stamp.tag))
    }

    static let gset = Generator<GSet, Shrink.None<GSet>> { rng in
        var set = GSet()
        for _ in 0..<Int.random(in: 0...6, using: &rng) {
            set.add(elements.randomElement(using: &rng) ?? "a", stamp: stamp(&rng))
        }
        return set
    }

    static let orset = Generator<ORSet, Shrink.None<ORSet>> { rng in
        var set = ORSet()
        for _ in 0..<Int.random(in: 0...8, using: &rng) {
            let element = elements.randomElement(using: &rng) ?? "a"
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: set.add(element, tag: stamp(&rng))
            case 1: set.remove(element, observed: (0..<Int.random(in: 0...2, using: &rng)).map { _ in stamp(&rng) })
            default: set.remove(element, below: stamp(&rng))
            }
        }
        return set
    }

    static let counter = Generator<PNCounter, Shrink.None<PNCounter>> { rng in
        var counter = PNCounter()
        for _ in 0..<Int.random(in: 0...6, using: &rng) {
            let totals = CounterTotals(p: Int64.random(in: 0...20, using: &rng), n: Int64.random(in: 0...20, using: &rng))
            let slot = origins.randomElement(using: &rng) ?? "x"
            if Int.random(in: 0..<4, using: &rng) == 0 {
                counter.recordBaseline(totals, slot: slot)
            } else {
                counter.record(totals, slot: slot)
            }
        }
        return counter
    }
}

/// Checks that `merge` is commutative, associative and idempotent on three values, and that
/// `merging` agrees with the mutating `merge`.
func expectMergeLaws<T: Equatable>(
    _ a: T, _ b: T, _ c: T, merging: (T, T) -> T, merge: (inout T, T) -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(merging(a, b) == merging(b, a), "commutative", sourceLocation: sourceLocation)
    #expect(merging(merging(a, b), c) == merging(a, merging(b, c)), "associative", sourceLocation: sourceLocation)
    #expect(merging(a, a) == a, "idempotent", sourceLocation: sourceLocation)
    #expect(merging(merging(a, b), b) == merging(a, b), "idempotent after a merge", sourceLocation: sourceLocation)
    var mutated = a
    merge(&mutated, b)
    #expect(mutated == merging(a, b), "merge(_:) and merging(_:) agree", sourceLocation: sourceLocation)
}

@Suite struct MergeLawTests {
    @Test func lwwRegister() async {
        await propertyCheck(count: 300, input: CRDTGen.register, CRDTGen.register, CRDTGen.register) { a, b, c in
            expectMergeLaws(a, b, c, merging: { $0.merging($1) }, merge: { $0.merge($1) })
            #expect(a.merging(b).stamp == max(a.stamp, b.stamp))
        }
    }

    @Test func growOnlySet() async {
        await propertyCheck(count: 300, input: CRDTGen.gset, CRDTGen.gset, CRDTGen.gset) { a, b, c in
            expectMergeLaws(a, b, c, merging: { $0.merging($1) }, merge: { $0.merge($1) })
            #expect(Set(a.merging(b).visibleElements()) == Set(a.visibleElements()).union(b.visibleElements()))
        }
    }

    @Test func observedRemoveSet() async {
        await propertyCheck(count: 300, input: CRDTGen.orset, CRDTGen.orset, CRDTGen.orset) { a, b, c in
            expectMergeLaws(a, b, c, merging: { $0.merging($1) }, merge: { $0.merge($1) })
        }
    }

    @Test func pnCounter() async {
        await propertyCheck(count: 300, input: CRDTGen.counter, CRDTGen.counter, CRDTGen.counter) { a, b, c in
            expectMergeLaws(a, b, c, merging: { $0.merging($1) }, merge: { $0.merge($1) })
            #expect(a.merging(b).value == b.merging(a).value)
        }
    }

    @Test func rowMergeState() async {
        // States of the same rows built from random parts of one multi-region history.
        let states = Generator<[RowMergeState], Shrink.None<[RowMergeState]>> { rng in
            var simulator = WorkloadSimulator(config: Fixtures.config, keysPerTable: 1)
            let events = simulator.run(steps: 60, using: &rng).filter { $0.table == "ledger" }
            return (0..<3).map { _ in
                var row = RowState(table: Fixtures.ledger, key: ["region_code": "k0", "n": 0])
                for event in events where Bool.random(using: &rng) { row.apply(event) }
                return row.state
            }
        }
        await propertyCheck(count: 100, input: states) { states in
            expectMergeLaws(states[0], states[1], states[2], merging: { $0.merging($1) }, merge: { $0.merge($1) })
            for state in states {
                #expect((try? RowMergeState(jsonText: state.jsonText)) == state, "the persisted form is lossless")
            }
        }
    }
}
