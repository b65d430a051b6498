/// One row's merge state together with its table declaration and key.
public struct RowState: Sendable, Equatable {
    /// What applying an event did.
    public struct ApplyOutcome: Sendable, Equatable {
        /// Whether the merge state changed (false for a duplicate or an already superseded event).
        public var isChanged: Bool
        /// Concurrent scalar writes from different regions that met in this merge.
        public var conflicts: [Conflict]

        /// Makes an outcome (for stores that merge some events themselves).
        public init(isChanged: Bool, conflicts: [Conflict]) {
            self.isChanged = isChanged
            self.conflicts = conflicts
        }
    }

    /// The table's declaration.
    public let table: TableSchema
    /// The row's key.
    public let key: [String: JSONValue]
    /// The merge state.
    public private(set) var state: RowMergeState

    /// A row's state as loaded from a store, or empty for a row never seen.
    public init(table: TableSchema, key: [String: JSONValue], state: RowMergeState = RowMergeState()) {
        self.table = table
        self.key = key
        self.state = state
    }

    /// Compares the merge states (the table and key are the same for the same row).
    public static func == (lhs: RowState, rhs: RowState) -> Bool {
        lhs.state == rhs.state && lhs.key == rhs.key && lhs.table.name == rhs.table.name
    }

    /// Whether the row is visible.
    public var isVisible: Bool { state.isVisible }

    /// Merges another state of the same row (state-based replication).
    public mutating func merge(_ other: RowState) {
        state.merge(other.state)
    }

    /// The merge with another state of the same row.
    public func merging(_ other: RowState) -> RowState {
        var copy = self
        copy.merge(other)
        return copy
    }

    /// Applies a validated event of this row and reports what changed and any conflicts.
    ///
    /// - Precondition: the event was validated against `table` (`TableSchema.validate(_:)`).
    @discardableResult
    public mutating func apply(_ event: ChangeEvent, conflictWindowMillis: UInt64 = GeorepConfig.defaultConflictWindowMillis) -> ApplyOutcome {
        let delta = Self.delta(of: event, table: table)
        let conflicts = detectConflicts(with: delta, windowMillis: conflictWindowMillis)
        let before = state
        state.merge(delta)
        return ApplyOutcome(isChanged: state != before, conflicts: conflicts)
    }

    /// The state that holds exactly one event.
    static func delta(of event: ChangeEvent, table: TableSchema) -> RowMergeState {
        var delta = RowMergeState()
        let stamp = event.stamp
        switch event.op {
        case .upsert:
            if table.merge.isWholeRow {
                var values: [String: JSONValue] = [:]
                for column in table.valueColumns { values[column.name] = event.columns[column.name] ?? .null }
                delta.row = LWWRegister(stamp: stamp, value: values)
            } else {
                for (column, value) in event.columns { delta.cells[column] = LWWRegister(stamp: stamp, value: value) }
            }
            delta.lastWrite = stamp
        case .delete:
            delta.tombstone = stamp
            for (column, slots) in event.counterBaselines {
                var counter = PNCounter()
                for (slot, totals) in slots { counter.recordBaseline(totals, slot: slot) }
                delta.counters[column] = counter
            }
        case .add:
            for (column, value) in event.columns {
                let elements = value.arrayValue?.compactMap(\.stringValue) ?? []
                if table.type(of: column) == .gset {
                    var set = GSet()
                    for element in elements { set.add(element, stamp: stamp) }
                    delta.gsets[column] = set
                } else {
                    var set = ORSet()
                    for element in elements { set.add(element, tag: stamp) }
                    delta.orsets[column] = set
                }
            }
            delta.lastWrite = stamp
        case .remove:
            for (column, value) in event.columns {
                var set = ORSet()
                for element in value.arrayValue?.compactMap(\.stringValue) ?? [] {
                    if let tags = event.observed[column]?[element] {
                        set.remove(element, observed: tags)
                    } else {
                        set.remove(element, below: stamp)
                    }
                }
                delta.orsets[column] = set
            }
        case .increment:
            for (column, value) in event.columns {
                var counter = PNCounter()
                if let totals = event.counterTotals[column] {
                    counter.record(totals, slot: event.counterSlot)
                } else {
                    let delta = value.intValue ?? 0
                    let totals = delta >= 0 ? CounterTotals(p: delta) : CounterTotals(n: delta == .min ? .max : -delta)
                    counter.record(totals, slot: "\(event.origin)@\(event.hlc)")
                }
                delta.counters[column] = counter
            }
            delta.lastWrite = stamp
        case .locate:
            // A directory entry: stores keep it apart from the rows.
            break
        }
        return delta
    }

    private func detectConflicts(with delta: RowMergeState, windowMillis: UInt64) -> [Conflict] {
        var conflicts: [Conflict] = []
        if let incoming = delta.row, let existing = state.row,
           let conflict = Conflict.between(
               existing.wholeRow, incoming.wholeRow, windowMillis: windowMillis, table: table.name, key: key, column: nil) {
            conflicts.append(conflict)
        }
        for (column, incoming) in delta.cells {
            if let existing = state.cells[column],
               let conflict = Conflict.between(existing, incoming, windowMillis: windowMillis, table: table.name, key: key, column: column) {
                conflicts.append(conflict)
            }
        }
        return conflicts
    }

    /// The visible row: key and declared columns; scalars (null when unset or deleted), sets as
    /// sorted arrays of their canonical strings, counters as integers. Nil when deleted or absent.
    public var view: [String: JSONValue]? {
        guard state.isVisible else { return nil }
        var view = key
        let tombstone = state.tombstone
        let liveRow = state.row.flatMap { register in tombstone.map { register.stamp > $0 } ?? true ? register.value : nil }
        for column in table.columns where !table.isKey(column.name) {
            switch column.type {
            case .integer, .real, .text, .boolean, .json:
                if table.merge.isWholeRow {
                    view[column.name] = liveRow?[column.name] ?? .null
                } else if let cell = state.cells[column.name], tombstone.map({ cell.stamp > $0 }) ?? true {
                    view[column.name] = cell.value
                } else {
                    view[column.name] = .null
                }
            case .gset:
                view[column.name] = .array((state.gsets[column.name]?.visibleElements(after: tombstone) ?? []).map(JSONValue.string))
            case .orset:
                view[column.name] = .array((state.orsets[column.name]?.visibleElements(after: tombstone) ?? []).map(JSONValue.string))
            case .counter:
                view[column.name] = .int(state.counters[column.name]?.value ?? 0)
            }
        }
        return view
    }
}

extension LWWRegister where Value == [String: JSONValue] {
    /// The register with its value as one JSON object.
    var wholeRow: LWWRegister<JSONValue> {
        LWWRegister<JSONValue>(stamp: stamp, value: .object(value))
    }
}
