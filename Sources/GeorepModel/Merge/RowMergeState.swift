/// The whole merge state of one row, independent of its table declaration.
///
/// Merging is commutative, associative and idempotent field by field. Stores persist it with
/// `jsonText` and `init(jsonText:)`.
public struct RowMergeState: Hashable, Sendable {
    /// The whole-row register of `lww` and `pinned` tables: non-key scalar column → value.
    public internal(set) var row: LWWRegister<[String: JSONValue]>?
    /// The per-column registers of `lww-columns` tables.
    public internal(set) var cells: [String: LWWRegister<JSONValue>] = [:]
    /// The `gset` columns.
    public internal(set) var gsets: [String: GSet] = [:]
    /// The `orset` columns.
    public internal(set) var orsets: [String: ORSet] = [:]
    /// The `counter` columns.
    public internal(set) var counters: [String: PNCounter] = [:]
    /// The highest stamp of a write that makes the row exist (upsert, add, increment).
    public internal(set) var lastWrite: Stamp?
    /// The highest delete stamp.
    public internal(set) var tombstone: Stamp?

    /// An empty state: a row never written.
    public init() {}

    /// A row written once under `lww`, as stored without merge metadata.
    public init(plainRow register: LWWRegister<[String: JSONValue]>) {
        row = register
        lastWrite = register.stamp
    }

    /// Whether the row is visible: some write is stamped after the latest delete.
    public var isVisible: Bool {
        guard let lastWrite else { return false }
        return tombstone.map { lastWrite > $0 } ?? true
    }

    /// Whether the state is only a whole-row register with no CRDT or delete metadata,
    /// so that it can be stored as plain columns plus its stamp.
    public var isPlainRow: Bool {
        guard let row else { return false }
        return cells.isEmpty && gsets.isEmpty && orsets.isEmpty && counters.isEmpty && tombstone == nil && lastWrite == row.stamp
    }

    /// The highest stamp recorded anywhere in the row.
    public var maxStamp: Stamp? {
        [lastWrite, tombstone, row?.stamp].compactMap { $0 }.max()
    }

    /// Merges another state of the same row into this one.
    public mutating func merge(_ other: RowMergeState) {
        row.mergeOptional(other.row) { $0.merge($1) }
        cells.mergeEach(other.cells) { $0.merge($1) }
        gsets.mergeEach(other.gsets) { $0.merge($1) }
        orsets.mergeEach(other.orsets) { $0.merge($1) }
        counters.mergeEach(other.counters) { $0.merge($1) }
        lastWrite.mergeOptional(other.lastWrite) { $0 = max($0, $1) }
        tombstone.mergeOptional(other.tombstone) { $0 = max($0, $1) }
        forgetDeletedValues()
    }

    /// Drops the values a delete hid for good: registers, set elements and tags stamped at or
    /// before the tombstone can never be visible again, whatever arrives later (a write older
    /// than the tombstone stays hidden). A deleted row then keeps no column values (a region-
    /// pinned row's personal data is gone from the store), only stamps and counter totals.
    ///
    /// Every state is pruned after every merge, so the pruned state is a function of the events
    /// merged, whatever their order: the merge laws still hold.
    private mutating func forgetDeletedValues() {
        guard let tombstone else { return }
        if let register = row, register.stamp <= tombstone { row = nil }
        cells = cells.filter { $0.value.stamp > tombstone }
        for column in gsets.keys { gsets[column]?.forget(upTo: tombstone) }
        for column in orsets.keys { orsets[column]?.forget(upTo: tombstone) }
    }

    /// The merge of two states of the same row.
    public func merging(_ other: RowMergeState) -> RowMergeState {
        var copy = self
        copy.merge(other)
        return copy
    }
}
