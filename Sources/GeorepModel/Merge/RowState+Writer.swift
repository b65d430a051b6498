/// Who writes an event and when: the fields a writer stamps on every event it builds.
public struct WriteContext: Sendable, Hashable {
    /// The writer's region.
    public var origin: String
    /// A fresh timestamp from the region's clock.
    public var hlc: HLCTimestamp
    /// The writer's epoch.
    public var epoch: UInt64
    /// The writer's counter slot; nil means the origin region.
    public var writer: String?

    /// Makes a context.
    public init(origin: String, hlc: HLCTimestamp, epoch: UInt64, writer: String? = nil) {
        self.origin = origin
        self.hlc = hlc
        self.epoch = epoch
        self.writer = writer
    }
}

/// Builders of the events that a writer publishes for HTTP requests, from the row's current state.
///
/// Each returns a validated event, or throws the `EventRejection` that names what is wrong
/// with the request (unknown column, wrong type, ...).
///
/// - Important: Build events of one row serially and fold each built event into the state
///   used for the next (`apply(_:)`), or two increments built from the same state would
///   carry the same running totals and one would be lost.
extension RowState {
    /// An upsert; under `lww` and `pinned` it carries the whole scalar row, unspecified
    /// columns keeping their current visible values.
    public func makeUpsert(_ columns: [String: JSONValue], context: WriteContext) throws(EventRejection) -> ChangeEvent {
        var values = columns
        if table.merge.isWholeRow, let view {
            for column in table.valueColumns where values[column.name] == nil {
                values[column.name] = view[column.name] ?? .null
            }
        }
        return try table.validate(makeEvent(.upsert, columns: values, context: context))
    }

    /// A delete; it carries every counter slot's totals as baselines, so the counters restart from zero.
    public func makeDelete(context: WriteContext) -> ChangeEvent {
        var event = makeEvent(.delete, columns: [:], context: context)
        for (column, counter) in state.counters where !counter.slots.isEmpty {
            event.counterBaselines[column] = counter.slots
        }
        return event
    }

    /// An add of elements to set columns.
    public func makeAdd(_ elements: [String: [JSONValue]], context: WriteContext) throws(EventRejection) -> ChangeEvent {
        try table.validate(makeEvent(.add, columns: elements.mapValues(JSONValue.array), context: context))
    }

    /// A remove of elements from OR-Set columns, carrying the add tags visible now.
    public func makeRemove(_ elements: [String: [JSONValue]], context: WriteContext) throws(EventRejection) -> ChangeEvent {
        var event = try table.validate(makeEvent(.remove, columns: elements.mapValues(JSONValue.array), context: context))
        for (column, value) in event.columns {
            let set = state.orsets[column] ?? ORSet()
            var observed: [String: [Stamp]] = [:]
            for element in value.arrayValue?.compactMap(\.stringValue) ?? [] {
                observed[element] = set.visibleTags(of: element, after: state.tombstone)
            }
            event.observed[column] = observed
        }
        return event
    }

    /// An increment of counter columns, carrying the writer slot's new running totals.
    ///
    /// A slot's totals only grow (the merge takes their maximum), so a slot whose total would
    /// leave the 64-bit range is done with: the increment goes to the writer's next slot
    /// (`<slot>~1`, `<slot>~2`, ...), which starts from zero, and the counter never blocks.
    ///
    /// - Throws: `EventRejection.wrongColumnType` when the counter's visible value would leave
    ///   the 64-bit integer range (as PostgreSQL refuses a bigint out of range).
    public func makeIncrement(_ deltas: [String: Int64], context: WriteContext) throws(EventRejection) -> ChangeEvent {
        var event = try table.validate(makeEvent(.increment, columns: deltas.mapValues(JSONValue.int), context: context))
        for (column, delta) in deltas where (state.counters[column]?.value ?? 0).addingReportingOverflow(delta).overflow {
            throw .wrongColumnType(table: table.name, column: column, problem: "the increment takes the counter out of the 64-bit integer range")
        }
        let base = event.counterSlot
        for generation in 0... {
            let slot = generation == 0 ? base : "\(base)~\(generation)"
            var totals: [String: CounterTotals] = [:]
            for (column, delta) in deltas {
                var slotTotals = (state.counters[column] ?? PNCounter()).totals(of: slot)
                let overflows: Bool
                if delta >= 0 {
                    (slotTotals.p, overflows) = slotTotals.p.addingReportingOverflow(delta)
                } else {
                    (slotTotals.n, overflows) = slotTotals.n.subtractingReportingOverflow(delta)
                }
                if overflows { break }
                totals[column] = slotTotals
            }
            guard totals.count == deltas.count else { continue }
            if generation > 0 { event.writer = slot }
            event.counterTotals = totals
            break
        }
        return event
    }

    private func makeEvent(_ op: ChangeEvent.Operation, columns: [String: JSONValue], context: WriteContext) -> ChangeEvent {
        ChangeEvent(
            origin: context.origin, table: table.name, key: key, op: op, hlc: context.hlc, epoch: context.epoch,
            columns: columns, writer: context.writer)
    }
}
