/// A merge state that cannot be read back.
public struct MergeStateDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong, naming the field.
    public var problem: String

    /// A human-readable reason.
    public var description: String { "invalid merge state: \(problem)" }
}

/// A lossless JSON form of the merge state for stores: reals stay reals (unlike `JSONDecoder`,
/// which cannot tell `1.0` from `1`), and reading it is fast.
extension RowMergeState {
    /// The state as a JSON object.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [:]
        if let row { object["row"] = ["s": .string(row.stamp.tag), "v": .object(row.value)] }
        if !cells.isEmpty { object["cells"] = .object(cells.mapValues { ["s": .string($0.stamp.tag), "v": $0.value] }) }
        // Set elements as [element, ...] pairs sorted by bytes, not as member names: two elements
        // that differ only in Unicode normalization are two elements, but one member name.
        if !gsets.isEmpty {
            object["gsets"] = .object(gsets.mapValues { set in
                .array(set.elements.sorted { $0.key < $1.key }.map { element, stamp in [.string(element.text), .string(stamp.tag)] })
            })
        }
        if !orsets.isEmpty {
            object["orsets"] = .object(orsets.mapValues { set in
                .array(set.entries.sorted { $0.key < $1.key }.map { element, entry in
                    var fields: [String: JSONValue] = [:]
                    if !entry.adds.isEmpty { fields["a"] = .array(entry.adds.sorted().map { .string($0.tag) }) }
                    if !entry.removed.isEmpty { fields["r"] = .array(entry.removed.sorted().map { .string($0.tag) }) }
                    if let watermark = entry.watermark { fields["w"] = .string(watermark.tag) }
                    return [.string(element.text), .object(fields)]
                })
            })
        }
        if !counters.isEmpty {
            object["counters"] = .object(counters.mapValues { counter in
                ["s": .object(counter.slots.mapValues(\.jsonValue)), "b": .object(counter.baselines.mapValues(\.jsonValue))]
            })
        }
        if let lastWrite { object["written"] = .string(lastWrite.tag) }
        if let tombstone { object["deleted"] = .string(tombstone.tag) }
        return .object(object)
    }

    /// Compact JSON text of `jsonValue`.
    public var jsonText: String { jsonValue.jsonText }

    /// Reads the form written by `jsonValue`.
    public init(json: JSONValue) throws(MergeStateDecodingError) {
        let object = try Self.object(json, "state")
        self.init()
        if let row = object["row"] {
            let fields = try Self.object(row, "row")
            let value = try Self.object(fields["v"] ?? .null, "row.v")
            self.row = LWWRegister(stamp: try Self.stamp(fields["s"], "row.s"), value: value)
        }
        for (column, cell) in try Self.object(object["cells"] ?? [:], "cells") {
            let fields = try Self.object(cell, "cells.\(column)")
            cells[column] = LWWRegister(stamp: try Self.stamp(fields["s"], "cells.\(column).s"), value: fields["v"] ?? .null)
        }
        for (column, elements) in try Self.object(object["gsets"] ?? [:], "gsets") {
            var set = GSet()
            for (element, tag) in try Self.pairs(elements, "gsets.\(column)") {
                set.add(element, stamp: try Self.stamp(tag, "gsets.\(column)"))
            }
            gsets[column] = set
        }
        for (column, elements) in try Self.object(object["orsets"] ?? [:], "orsets") {
            var set = ORSet()
            for (element, entry) in try Self.pairs(elements, "orsets.\(column)") {
                let fields = try Self.object(entry, "orsets.\(column)")
                for tag in fields["a"]?.arrayValue ?? [] { set.add(element, tag: try Self.stamp(tag, "orsets.\(column).a")) }
                let removed = try (fields["r"]?.arrayValue ?? []).map { tag throws(MergeStateDecodingError) in
                    try Self.stamp(tag, "orsets.\(column).r")
                }
                set.remove(element, observed: removed)
                if let watermark = fields["w"] { set.remove(element, below: try Self.stamp(watermark, "orsets.\(column).w")) }
            }
            orsets[column] = set
        }
        for (column, value) in try Self.object(object["counters"] ?? [:], "counters") {
            let fields = try Self.object(value, "counters.\(column)")
            var counter = PNCounter()
            for (slot, totals) in try Self.object(fields["s"] ?? [:], "counters.\(column).s") {
                counter.record(try Self.totals(totals, "counters.\(column).s"), slot: slot)
            }
            for (slot, totals) in try Self.object(fields["b"] ?? [:], "counters.\(column).b") {
                counter.recordBaseline(try Self.totals(totals, "counters.\(column).b"), slot: slot)
            }
            counters[column] = counter
        }
        if let written = object["written"] { lastWrite = try Self.stamp(written, "written") }
        if let deleted = object["deleted"] { tombstone = try Self.stamp(deleted, "deleted") }
    }

    /// Parses the text written by `jsonText`.
    public init(jsonText: String) throws(MergeStateDecodingError) {
        guard let json = JSONValue(parsing: Array(jsonText.utf8)) else {
            throw MergeStateDecodingError(problem: "not JSON")
        }
        try self.init(json: json)
    }

    private static func object(_ value: JSONValue, _ field: String) throws(MergeStateDecodingError) -> [String: JSONValue] {
        guard case let .object(members) = value else { throw MergeStateDecodingError(problem: "\(field) must be an object") }
        return members
    }

    /// A set's elements: `[[element, value], ...]`, or an object of element → value as stores
    /// written before elements were compared by bytes kept them.
    private static func pairs(_ value: JSONValue, _ field: String) throws(MergeStateDecodingError) -> [(String, JSONValue)] {
        if case let .object(members) = value { return members.map { ($0.key, $0.value) } }
        guard case let .array(items) = value else { throw MergeStateDecodingError(problem: "\(field) must be an array") }
        return try items.map { item throws(MergeStateDecodingError) in
            guard case let .array(pair) = item, pair.count == 2, let element = pair[0].stringValue else {
                throw MergeStateDecodingError(problem: "\(field) must hold [element, value] pairs")
            }
            return (element, pair[1])
        }
    }

    private static func stamp(_ value: JSONValue?, _ field: String) throws(MergeStateDecodingError) -> Stamp {
        guard let text = value?.stringValue, let stamp = Stamp(tag: text) else {
            throw MergeStateDecodingError(problem: "\(field) must be a tag \"<hlc>@<origin>\"")
        }
        return stamp
    }

    private static func totals(_ value: JSONValue, _ field: String) throws(MergeStateDecodingError) -> CounterTotals {
        let fields = try object(value, field)
        guard let p = fields["p"]?.intValue, let n = fields["n"]?.intValue else {
            throw MergeStateDecodingError(problem: "\(field) must hold integers p and n")
        }
        return CounterTotals(p: p, n: n)
    }
}
