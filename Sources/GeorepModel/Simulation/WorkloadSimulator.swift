/// A deterministic multi-region workload: regions write random events to every configured
/// table through the writer helpers and exchange them in random order.
///
/// It produces realistic histories (concurrent writes, observed removes, running counter
/// totals, deletes, resurrections, hand-written events without optional fields) for
/// convergence tests, demos and benchmarks. It does no I/O.
public struct WorkloadSimulator {
    private struct Region {
        var id: String
        var last: HLCTimestamp = .zero
        var skewMillis: UInt64
        var rows: [String: RowState] = [:]
        var inbox: [ChangeEvent] = []
    }

    /// The configuration whose tables are written.
    public let config: GeorepConfig
    /// How many distinct keys each table uses.
    public let keysPerTable: Int
    private var regions: [Region]
    private var wallMillis: UInt64
    private let scalarTexts = ["Ann", "Bob", "Chloé", "", "a,b", "quote\"d"]
    private let elements: [JSONValue] = ["sku-1", "sku-2", "sku-3", 7, true]

    /// Makes a simulator for `regionIDs` (the configured regions by default) starting at `startMillis`.
    public init(config: GeorepConfig, regionIDs: [String]? = nil, keysPerTable: Int = 2, startMillis: UInt64 = 1_750_000_000_000) {
        self.config = config
        self.keysPerTable = max(1, keysPerTable)
        self.wallMillis = startMillis
        let ids = regionIDs ?? config.regions.map(\.id)
        self.regions = ids.enumerated().map { index, id in Region(id: id, skewMillis: UInt64(index % 3)) }
    }

    /// Runs `steps` steps and returns every event written, in the order written.
    public mutating func run<R: RandomNumberGenerator>(steps: Int, using rng: inout R) -> [ChangeEvent] {
        var written: [ChangeEvent] = []
        for _ in 0..<steps {
            wallMillis += UInt64.random(in: 0...3, using: &rng)
            let index = Int.random(in: 0..<regions.count, using: &rng)
            if Int.random(in: 0..<10, using: &rng) < 3 {
                deliver(to: index, using: &rng)
            } else if let event = write(at: index, using: &rng) {
                written.append(event)
                for other in regions.indices where other != index { regions[other].inbox.append(event) }
            }
        }
        return written
    }

    /// The key of row number `number` of `table`.
    public func key(_ number: Int, of table: TableSchema) -> [String: JSONValue] {
        var key: [String: JSONValue] = [:]
        for column in table.key {
            switch table.type(of: column) {
            case .integer: key[column] = .int(Int64(number))
            case .boolean: key[column] = .bool(number % 2 == 0)
            default: key[column] = .string("k\(number)")
            }
        }
        return key
    }

    private mutating func deliver<R: RandomNumberGenerator>(to index: Int, using rng: inout R) {
        var region = regions[index]
        region.inbox.shuffle(using: &rng)
        let count = Int.random(in: 0...region.inbox.count, using: &rng)
        for event in region.inbox.prefix(count) {
            region.last = max(region.last, event.hlc)
            let id = config.table(named: event.table)?.kafkaKey(for: event.key) ?? event.table
            if let table = config.table(named: event.table) {
                var row = region.rows[id] ?? RowState(table: table, key: event.key)
                row.apply(event)
                region.rows[id] = row
            }
        }
        region.inbox.removeFirst(count)
        regions[index] = region
    }

    private mutating func write<R: RandomNumberGenerator>(at index: Int, using rng: inout R) -> ChangeEvent? {
        guard let table = config.tables.randomElement(using: &rng) else { return nil }
        let key = key(Int.random(in: 0..<keysPerTable, using: &rng), of: table)
        let id = table.kafkaKey(for: key)
        var region = regions[index]
        let wall = HLCTimestamp(millis: wallMillis + region.skewMillis, logical: 0)
        region.last = wall > region.last ? wall : HLCTimestamp(rawValue: region.last.rawValue + 1)
        let context = WriteContext(origin: region.id, hlc: region.last, epoch: 1)
        let row = region.rows[id] ?? RowState(table: table, key: key)
        guard let event = makeEvent(for: row, context: context, using: &rng) else { return nil }
        var updated = row
        updated.apply(event)
        region.rows[id] = updated
        regions[index] = region
        return event
    }

    private func makeEvent<R: RandomNumberGenerator>(for row: RowState, context: WriteContext, using rng: inout R) -> ChangeEvent? {
        let table = row.table
        let sets = table.columns.filter { $0.type.isSet }
        let orsets = table.columns.filter { $0.type == .orset }
        let counters = table.columns.filter { $0.type == .counter }
        var choices: [ChangeEvent.Operation] = [.upsert, .upsert, .delete]
        if !sets.isEmpty { choices += [.add, .add] }
        if !orsets.isEmpty { choices += [.remove, .remove] }
        if !counters.isEmpty { choices += [.increment, .increment] }
        if table.merge == .pinned { choices.append(.locate) }
        let handWritten = Int.random(in: 0..<4, using: &rng) == 0
        switch choices.randomElement(using: &rng) ?? .upsert {
        case .upsert:
            var columns: [String: JSONValue] = [:]
            for column in table.valueColumns where Bool.random(using: &rng) || column.name == TableSchema.homeRegionColumn {
                columns[column.name] = column.name == TableSchema.homeRegionColumn
                    ? .string(context.origin) : randomScalar(column.type, using: &rng)
            }
            return try? row.makeUpsert(columns, context: context)
        case .delete:
            return row.makeDelete(context: context)
        case .add:
            guard let column = sets.randomElement(using: &rng) else { return nil }
            return try? row.makeAdd([column.name: randomElements(using: &rng)], context: context)
        case .remove:
            guard let column = orsets.randomElement(using: &rng) else { return nil }
            var event = try? row.makeRemove([column.name: randomElements(using: &rng)], context: context)
            if handWritten { event?.observed = [:] }
            return event
        case .locate:
            return ChangeEvent(
                origin: context.origin, table: table.name, key: row.key, op: .locate, hlc: context.hlc, epoch: context.epoch,
                columns: [TableSchema.homeRegionColumn: .string(context.origin)])
        case .increment:
            guard let column = counters.randomElement(using: &rng) else { return nil }
            var event = try? row.makeIncrement([column.name: Int64.random(in: -5...9, using: &rng)], context: context)
            if handWritten { event?.counterTotals = [:] }
            return event
        }
    }

    private func randomElements<R: RandomNumberGenerator>(using rng: inout R) -> [JSONValue] {
        (0..<Int.random(in: 1...2, using: &rng)).compactMap { _ in elements.randomElement(using: &rng) }
    }

    private func randomScalar<R: RandomNumberGenerator>(_ type: ColumnType, using rng: inout R) -> JSONValue {
        if Int.random(in: 0..<8, using: &rng) == 0 { return .null }
        switch type {
        case .integer: return .int(Int64.random(in: -1000...1000, using: &rng))
        case .real: return .double(Double(Int.random(in: -100...100, using: &rng)) / 4)
        case .boolean: return .bool(Bool.random(using: &rng))
        case .json: return ["n": .int(Int64.random(in: 0...3, using: &rng)), "list": [1, "x"]]
        default: return .string(scalarTexts.randomElement(using: &rng) ?? "")
        }
    }
}
