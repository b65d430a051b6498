import Foundation
public import GeorepModel
import GRDB
public import Logging

/// The embedded store: one SQLite file in WAL mode, accessed through GRDB.
///
/// - Important: Open one `SQLiteStore` per file and process; all methods are thread-safe
///   (writes are serialized by GRDB, reads run concurrently in WAL mode).
public final class SQLiteStore: ReplicaStore {
    /// Throughput settings applied to every connection.
    public struct Settings: Sendable, Hashable {
        /// `PRAGMA synchronous`: NORMAL is durable across process crashes in WAL mode and
        /// may lose the last transactions on power loss (they are re-applied from Kafka).
        public var synchronous = "NORMAL"
        /// Page cache per connection, in KiB.
        public var cacheSizeKiB = 65_536
        /// Pages of WAL past which the WAL is started over: a checkpoint in the writer's turn
        /// copies the last frames the background checkpoints (``WALCheckpointer``) left.
        public var walRestartPages = 4_000
        /// How long a connection waits for a lock held by another process, in seconds.
        public var busyTimeoutSeconds: Double = 5

        /// The defaults.
        public init() {}
    }

    /// The configuration whose tables the store holds.
    public let config: GeorepConfig
    /// The SQLite file.
    public let path: String
    let pool: DatabasePool
    private let checkpointer: WALCheckpointer
    let tables: [String: TableSQL]
    private let logger: Logger

    /// Opens (creating or migrating) the store at `path` for the tables of `config`.
    ///
    /// - Throws: `StoreError.incompatibleSchema` when the configuration changes a stored table
    ///   in a way other than adding tables or columns; a GRDB `DatabaseError` on SQLite failures.
    public init(path: String, config: GeorepConfig, settings: Settings = Settings(), logger: Logger = Logger(label: "georep.store.sqlite")) throws {
        self.config = config
        self.path = path
        self.logger = logger
        let tableSQL = config.tables.map(TableSQL.init(table:))
        self.tables = Dictionary(tableSQL.map { ($0.table.name, $0) }, uniquingKeysWith: { first, _ in first })

        var configuration = Configuration()
        configuration.label = "georep"
        configuration.busyMode = .timeout(settings.busyTimeoutSeconds)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(settings.synchronous == "FULL" ? "FULL" : "NORMAL")")
            try db.execute(sql: "PRAGMA cache_size = -\(max(1, settings.cacheSizeKiB))")
            // The checkpointer copies the WAL back on its own thread.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try StoreSchema.migrator.migrate(pool)
        let added = try pool.write { db in try StoreSchema.prepareApplicationTables(db, tables: tableSQL) }
        if !added.isEmpty {
            logger.info("added columns to existing tables", metadata: ["columns": .string(added.joined(separator: ", "))])
        }
        checkpointer = try WALCheckpointer(
            path: path, writer: pool, restartPages: max(1, settings.walRestartPages),
            busyTimeoutSeconds: settings.busyTimeoutSeconds, logger: logger)
        logger.debug("opened SQLite store", metadata: ["tables": .stringConvertible(tableSQL.count)])
    }

    /// Closes the file; the store cannot be used afterwards.
    public func close() async throws {
        try await checkpointer.stop()
        try pool.close()
    }

    deinit {
        checkpointer.requestStop()
    }

    private func tableSQL(_ name: String) throws(StoreError) -> TableSQL {
        guard let sql = tables[name] else { throw .unknownTable(name) }
        return sql
    }

    // MARK: Apply

    /// Applies a batch in one transaction with its next positions; see `ReplicaStore.apply(batch:consumed:)`.
    public func apply(batch: [SourcedEvent], consumed: [SourcePosition]) async throws -> BatchOutcome {
        try await pool.write { db in try self.apply(batch, consumed: consumed, in: db) }
    }

    /// Applies a batch on the calling thread; see `ReplicaStore.apply(batch:consumed:)`.
    public func applySynchronously(batch: [SourcedEvent], consumed: [SourcePosition] = []) throws -> BatchOutcome {
        try pool.write { db in try apply(batch, consumed: consumed, in: db) }
    }

    /// Applies the batch optimistically in one savepoint; when a write fails, rolls the batch
    /// back and applies it again with one savepoint per event, so that only the failing events
    /// are left out. Either way the positions are stored in the same transaction.
    private func apply(_ batch: [SourcedEvent], consumed: [SourcePosition], in db: Database) throws -> BatchOutcome {
        let stored = try loadPositions(db)
        var outcome: BatchOutcome?
        do {
            try db.inSavepoint {
                outcome = try applyEvents(batch, consumed: consumed, stored: stored, isolatingEachEvent: false, in: db)
                return .commit
            }
        } catch is WriteFailedInBatch {
            outcome = nil
        }
        let result = try outcome ?? applyEvents(batch, consumed: consumed, stored: stored, isolatingEachEvent: true, in: db)
        if !result.failures.isEmpty {
            logger.warning("events failed to apply", metadata: ["count": .stringConvertible(result.failures.count)])
        }
        return result
    }

    /// A write failed during an optimistic batch: apply again with a savepoint per event.
    private struct WriteFailedInBatch: Error {}

    private func applyEvents(
        _ batch: [SourcedEvent], consumed: [SourcePosition], stored: [SourcePartition: Int64], isolatingEachEvent: Bool, in db: Database
    ) throws -> BatchOutcome {
        var outcome = BatchOutcome()
        var next: [SourcePartition: Int64] = [:]
        for source in consumed where source.offset >= stored[source.partition] ?? 0 {
            next[source.partition] = max(next[source.partition] ?? stored[source.partition] ?? 0, source.offset + 1)
        }
        var highest = HLCTimestamp.zero
        var statements = BatchStatements()
        // Events come in runs of one partition: its positions are looked up once per run.
        var run: (partition: SourcePartition, stored: Int64?, next: Int64)?
        func endRun() {
            if let run { next[run.partition] = max(next[run.partition] ?? 0, run.next) }
        }
        for (index, item) in batch.enumerated() {
            if let source = item.source {
                if run?.partition != source.partition {
                    endRun()
                    let position = stored[source.partition]
                    run = (source.partition, position, next[source.partition] ?? position ?? 0)
                }
                if let position = run!.stored, source.offset < position {
                    outcome.skipped += 1
                    continue
                }
                run!.next = max(run!.next, source.offset + 1)
            }
            do {
                let (sql, event) = try prepare(item)
                var result: RowState.ApplyOutcome?
                if isolatingEachEvent {
                    try db.inSavepoint {
                        result = try applyOne(event, sql, statements: &statements, in: db)
                        return .commit
                    }
                } else {
                    do {
                        result = try applyOne(event, sql, statements: &statements, in: db)
                    } catch {
                        throw WriteFailedInBatch()
                    }
                }
                if let result {
                    if result.isChanged { outcome.changed += 1 } else { outcome.unchanged += 1 }
                    outcome.conflicts += result.conflicts
                }
                highest = max(highest, item.event.hlc)
            } catch let error where !(error is WriteFailedInBatch) {
                // A statement whose execution failed keeps the error until GRDB's cache resets it.
                statements = BatchStatements()
                let reason = Self.reason(error)
                outcome.failures.append(EventFailure(index: index, source: item.source, reason: reason))
                if let source = item.source {
                    try db.execute(
                        sql: #"INSERT INTO georep_dead_letters (topic, partition, "offset", reason, payload) VALUES (?, ?, ?, ?, ?)"#,
                        arguments: [source.partition.topic, source.partition.partition, source.offset, reason, item.event.encodedJSON()])
                }
            }
        }
        endRun()
        let savePosition = try db.cachedStatement(sql: """
            INSERT INTO georep_offsets (topic, partition, next_offset) VALUES (?, ?, ?)
            ON CONFLICT (topic, partition) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)
            """)
        for (partition, offset) in next where offset != stored[partition] {
            try savePosition.execute(arguments: [partition.topic, partition.partition, offset])
        }
        if highest > .zero { try raiseHighWaterMark(highest, in: db) }
        outcome.positions = next
        return outcome
    }

    /// Finds the event's table and validates the event unless it was; throws before anything is written.
    private func prepare(_ item: SourcedEvent) throws -> (TableSQL, ChangeEvent) {
        let sql = try tableSQL(item.event.table)
        return (sql, item.isValidated ? item.event : try sql.table.validate(item.event))
    }

    /// Statements of one transaction by table: GRDB's statement cache is keyed by the SQL text,
    /// which it hashes on every lookup, so a batch looks each statement up once.
    private struct BatchStatements {
        enum Kind: Hashable { case plainUpsert, upsert, selectState }
        private struct Key: Hashable {
            var table: String
            var kind: Kind
        }
        private var statements: [Key: Statement] = [:]

        mutating func statement(_ kind: Kind, sql text: String, table: String, in db: Database) throws -> Statement {
            let key = Key(table: table, kind: kind)
            if let statement = statements[key] { return statement }
            let statement = try db.cachedStatement(sql: text)
            statements[key] = statement
            return statement
        }
    }

    private func applyOne(_ event: ChangeEvent, _ sql: TableSQL, statements: inout BatchStatements, in db: Database) throws -> RowState.ApplyOutcome {
        let table = sql.table.name
        if event.op == .locate, let home = event.columns[TableSchema.homeRegionColumn]?.stringValue {
            try recordPinnedHome(table: sql.table, key: event.key, region: home, in: db)
            return RowState.ApplyOutcome(isChanged: false, conflicts: [])
        }
        // Most upserts of plain LWW rows: one statement, no read, no merge state in Swift.
        if let plainUpsert = sql.plainUpsert, event.op == .upsert,
           let arguments = sql.plainUpsertArguments(event, conflictWindowMillis: config.conflictWindowMillis) {
            try statements.statement(.plainUpsert, sql: plainUpsert, table: table, in: db).execute(arguments: arguments)
            if db.changesCount > 0 { return RowState.ApplyOutcome(isChanged: true, conflicts: []) }
        }
        let select = try statements.statement(.selectState, sql: sql.selectState, table: table, in: db)
        var row = RowState(table: sql.table, key: event.key, state: try loadState(sql, key: event.key, using: select) ?? RowMergeState())
        let result = row.apply(event, conflictWindowMillis: config.conflictWindowMillis)
        if result.isChanged {
            try statements.statement(.upsert, sql: sql.upsert, table: table, in: db).execute(arguments: sql.upsertArguments(row))
        }
        for conflict in result.conflicts { try record(conflict, table: sql.table, in: db) }
        return result
    }

    /// The row's stored merge state, read with `statement` (the table's `selectState`).
    private func loadState(_ sql: TableSQL, key: [String: JSONValue], using statement: Statement) throws -> RowMergeState? {
        guard let stored = try Row.fetchOne(statement, arguments: sql.keyArguments(key)) else { return nil }
        return try sql.mergeState(from: stored, start: 0)
    }

    private func record(_ conflict: Conflict, table: TableSchema, in db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO georep_conflicts (table_name, row_key, key_json, column_name, winner_hlc, winner_origin,
                winner_value, loser_hlc, loser_origin, loser_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.execute(arguments: [
            table.name, table.keyText(conflict.key), JSONValue.object(conflict.key).jsonText, conflict.column,
            Int64(bitPattern: conflict.winner.stamp.hlc.rawValue), conflict.winner.stamp.origin, conflict.winner.value.jsonText,
            Int64(bitPattern: conflict.loser.stamp.hlc.rawValue), conflict.loser.stamp.origin, conflict.loser.value.jsonText,
        ])
    }

    private func raiseHighWaterMark(_ timestamp: HLCTimestamp, in db: Database) throws {
        try db.cachedStatement(sql: "UPDATE georep_clock SET high_water_mark = max(high_water_mark, ?) WHERE id = 1")
            .execute(arguments: [Int64(bitPattern: timestamp.rawValue)])
    }

    private func loadPositions(_ db: Database) throws -> [SourcePartition: Int64] {
        var positions: [SourcePartition: Int64] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT topic, partition, next_offset FROM georep_offsets")) {
            positions[SourcePartition(topic: row[0], partition: row[1])] = row[2]
        }
        return positions
    }

    /// A failure reason for the dead-letter header: names the problem, never bound values.
    private static func reason(_ error: any Error) -> String {
        switch error {
        case let error as DatabaseError:
            "SQLite error \(error.extendedResultCode.rawValue): \(error.message ?? "unknown")"
        case let error as EventRejection:
            error.description
        case let error as StoreError:
            error.description
        default:
            String(describing: type(of: error))
        }
    }

    // MARK: Reads

    /// The stored positions: the next offset to consume per source topic partition.
    public func positions() async throws -> [SourcePartition: Int64] {
        try await pool.read { db in try self.loadPositions(db) }
    }

    /// The visible row, or nil when it is absent or deleted.
    public func row(table: String, key: [String: JSONValue]) async throws -> [String: JSONValue]? {
        try await rowState(table: table, key: key).view
    }

    /// The row's merge state (empty for a row never written).
    ///
    /// - Throws: `StoreError.unknownTable`, or `EventRejection.keyMismatch` naming what is wrong with the key.
    public func rowState(table: String, key: [String: JSONValue]) async throws -> RowState {
        let sql = try tableSQL(table)
        try sql.table.checkKey(key)
        let state = try await pool.read { db in try self.loadState(sql, key: key, using: db.cachedStatement(sql: sql.selectState)) }
        return RowState(table: sql.table, key: key, state: state ?? RowMergeState())
    }

    /// Every visible row of a table, in key order.
    public func snapshot(table: String) async throws -> [[String: JSONValue]] {
        let sql = try tableSQL(table)
        return try await pool.read { db in
            var rows: [[String: JSONValue]] = []
            let cursor = try Row.fetchCursor(db, sql: sql.selectSnapshot)
            while let stored = try cursor.next() {
                var key: [String: JSONValue] = [:]
                for (index, column) in sql.table.key.enumerated() {
                    key[column] = try sql.keyValue(stored[index], column: column)
                }
                let state = try sql.mergeState(from: stored, start: sql.table.key.count)
                if let view = RowState(table: sql.table, key: key, state: state).view { rows.append(view) }
            }
            return rows
        }
    }

    /// The number of recorded conflicts.
    public func conflictCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM georep_conflicts") ?? 0 }
    }

    /// The most recent recorded conflicts, newest first.
    public func conflicts(limit: Int) async throws -> [ConflictRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, table_name, key_json, column_name, winner_hlc, winner_origin, winner_value, loser_hlc, loser_origin, loser_value
                FROM georep_conflicts ORDER BY id DESC LIMIT ?
                """, arguments: [max(0, limit)]).map { row in
                func register(_ hlc: Int64, _ origin: String, _ value: String) -> LWWRegister<JSONValue> {
                    LWWRegister(stamp: Stamp(hlc: HLCTimestamp(rawValue: UInt64(bitPattern: hlc)), origin: origin),
                                value: JSONValue(parsing: Array(value.utf8)) ?? .null)
                }
                let keyJSON: String = row[2]
                let conflict = Conflict(
                    table: row[1], key: JSONValue(parsing: Array(keyJSON.utf8))?.objectValue ?? [:], column: row[3],
                    winner: register(row[4], row[5], row[6]), loser: register(row[7], row[8], row[9]))
                return ConflictRecord(id: row[0], conflict: conflict)
            }
        }
    }

    /// The highest HLC applied or recorded.
    public func highWaterMark() async throws -> HLCTimestamp {
        try await pool.read { db in
            HLCTimestamp(rawValue: UInt64(bitPattern: try Int64.fetchOne(db, sql: "SELECT high_water_mark FROM georep_clock WHERE id = 1") ?? 0))
        }
    }

    /// Raises the stored high-water mark to at least `timestamp`.
    public func recordHighWaterMark(_ timestamp: HLCTimestamp) async throws {
        try await pool.write { db in try self.raiseHighWaterMark(timestamp, in: db) }
    }

    // MARK: Dead letters

    /// Claims dead letters not yet produced; see `ReplicaStore.claimDeadLetters(limit:lease:)`.
    /// The lease is kept in milliseconds of this machine's wall clock.
    public func claimDeadLetters(limit: Int, lease: Duration) async throws -> [DeadLetter] {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let until = now + Int64(lease / .milliseconds(1))
        return try await pool.write { db in
            let letters = try Row.fetchAll(db, sql: #"""
                SELECT id, topic, partition, "offset", reason, payload FROM georep_dead_letters
                WHERE claimed_until IS NULL OR claimed_until <= ? ORDER BY id LIMIT ?
                """#, arguments: [now, max(0, limit)]).map { row in
                let topic: String? = row[1]
                let partition: Int32? = row[2]
                let offset: Int64? = row[3]
                let source = topic.flatMap { topic in
                    partition.flatMap { partition in offset.map { SourcePosition(topic: topic, partition: partition, offset: $0) } }
                }
                let payload: Data = row[5]
                return DeadLetter(id: row[0], source: source, reason: row[4], payload: Array(payload))
            }
            let claim = try db.cachedStatement(sql: "UPDATE georep_dead_letters SET claimed_until = ? WHERE id = ?")
            for letter in letters { try claim.execute(arguments: [until, letter.id]) }
            return letters
        }
    }

    /// Forgets dead letters that were produced.
    public func removeDeadLetters(ids: [Int64]) async throws {
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: "DELETE FROM georep_dead_letters WHERE id = ?")
            for id in ids { try statement.execute(arguments: [id]) }
        }
    }

    // MARK: Pinned directory

    /// The home region of a pinned row, from the directory.
    public func pinnedHome(table: String, key: [String: JSONValue]) async throws -> String? {
        let schema = try tableSQL(table).table
        return try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT home_region FROM georep_pinned_directory WHERE table_name = ? AND row_key = ?",
                                arguments: [table, schema.keyText(key)])
        }
    }

    /// Records a pinned row's home region in the directory, unless it names one already: the
    /// first claim of a row wins.
    public func recordPinnedHome(table: String, key: [String: JSONValue], region: String) async throws {
        let schema = try tableSQL(table).table
        try await pool.write { db in try self.recordPinnedHome(table: schema, key: key, region: region, in: db) }
    }

    private func recordPinnedHome(table: TableSchema, key: [String: JSONValue], region: String, in db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO georep_pinned_directory (table_name, row_key, home_region) VALUES (?, ?, ?)
            ON CONFLICT (table_name, row_key) DO NOTHING
            """).execute(arguments: [table.name, table.keyText(key), region])
    }

    // MARK: Regions and replication status

    /// Inserts or replaces regions' rows of `georep_region_config`.
    public func saveRegionConfigs(_ records: [RegionConfigRecord]) async throws {
        let now = Self.timestamp(Date())
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO georep_region_config (region_id, kafka, http, is_primary, is_accepting_writes, epoch, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (region_id) DO UPDATE SET kafka = excluded.kafka, http = excluded.http, is_primary = excluded.is_primary,
                    is_accepting_writes = excluded.is_accepting_writes, epoch = excluded.epoch, updated_at = excluded.updated_at
                """)
            for record in records {
                try statement.execute(arguments: [record.regionID, record.kafka, record.http, record.isPrimary,
                                                  record.isAcceptingWrites, Int64(clamping: record.epoch), now])
            }
        }
    }

    /// The rows of `georep_region_config`, by region id.
    public func regionConfigs() async throws -> [RegionConfigRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT region_id, kafka, http, is_primary, is_accepting_writes, epoch FROM georep_region_config ORDER BY region_id")
                .map { row in
                    let epoch: Int64 = row[5]
                    return RegionConfigRecord(regionID: row[0], kafka: row[1], http: row[2], isPrimary: row[3],
                                              isAcceptingWrites: row[4], epoch: UInt64(max(0, epoch)))
                }
        }
    }

    /// Inserts or replaces rows of `georep_replication_status`.
    public func saveReplicationStatus(_ records: [ReplicationStatusRecord]) async throws {
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO georep_replication_status (source_region, target_region, last_lsn, lag_records, lag_ms, updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (source_region, target_region) DO UPDATE SET last_lsn = excluded.last_lsn,
                    lag_records = excluded.lag_records, lag_ms = excluded.lag_ms, updated_at = excluded.updated_at
                """)
            for record in records {
                try statement.execute(arguments: [record.sourceRegion, record.targetRegion, record.lastLSN, record.lagRecords,
                                                  record.lagMillis, Self.timestamp(record.updatedAt)])
            }
        }
    }

    /// The rows of `georep_replication_status`, by source then target region.
    public func replicationStatus() async throws -> [ReplicationStatusRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT source_region, target_region, last_lsn, lag_records, lag_ms, updated_at
                FROM georep_replication_status ORDER BY source_region, target_region
                """).map { row in
                let updated: String = row[5]
                return ReplicationStatusRecord(sourceRegion: row[0], targetRegion: row[1], lastLSN: row[2], lagRecords: row[3],
                                               lagMillis: row[4], updatedAt: Self.date(updated) ?? Date(timeIntervalSince1970: 0))
            }
        }
    }

    /// UTC time as `YYYY-MM-DDTHH:MM:SS.sssZ`, which SQLite's date functions read.
    private static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    private static func date(_ text: String) -> Date? {
        try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
