public import GeorepLog
import Foundation
public import GeorepModel
public import Logging
import PostgresNIO

/// The production store: one PostgreSQL database, shared by every node process of a region.
///
/// A batch, its source positions, conflicts and dead letters are one transaction. The offsets
/// table is the truth: the transaction first locks the offset rows of its partitions and skips
/// events below the stored positions, so two appliers that briefly overlap on a partition
/// (a rebalance) apply each event once. Rows are merged by GeorepModel's `RowState` under a
/// per-row lock (`pg_advisory_xact_lock` on the row, then `SELECT … FOR UPDATE`) and written
/// with one `INSERT … ON CONFLICT … DO UPDATE … WHERE (hlc, origin) <= excluded` per table.
///
/// - Important: Open it with ``open(location:config:logger:)`` and ``close()`` it when done;
///   all methods are safe to call concurrently.
public final class PostgresStore: ReplicaStore {
    /// The configuration whose tables the store holds.
    public let config: GeorepConfig
    /// Where the database is (without its password).
    public let location: PostgresLocation
    let client: PostgresClient
    private let runner: Task<Void, Never>
    private let tables: [String: PostgresTableSQL]
    let logger: Logger

    private init(config: GeorepConfig, location: PostgresLocation, tables: [PostgresTableSQL], logger: Logger) {
        self.config = config
        self.location = location
        self.logger = logger
        self.tables = Dictionary(tables.map { ($0.table.name, $0) }, uniquingKeysWith: { first, _ in first })
        let client = PostgresClient(configuration: location.clientConfiguration, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
    }

    /// Connects, applies the store's migrations and creates or extends the configured tables.
    ///
    /// - Throws: `StoreError.unreachable` naming the server when it cannot connect or log in;
    ///   `StoreError.incompatibleSchema` when the configuration changes a stored table other
    ///   than by adding tables or columns.
    public static func open(location: PostgresLocation, config: GeorepConfig, logger: Logger = Logger(label: "georep.store.postgres")) async throws -> PostgresStore {
        let tableSQL = config.tables.map(PostgresTableSQL.init(table:))
        let added = try await location.withConnection(logger: logger) { connection in
            try await PostgresSchema.prepare(connection, tables: tableSQL, logger: logger)
        }
        if !added.isEmpty {
            logger.info("added columns to existing tables", metadata: ["columns": .string(added.joined(separator: ", "))])
        }
        logger.debug("opened PostgreSQL store", metadata: ["database": .stringConvertible(location), "tables": .stringConvertible(tableSQL.count)])
        return PostgresStore(config: config, location: location, tables: tableSQL, logger: logger)
    }

    /// Closes the connections; the store cannot be used afterwards.
    public func close() async {
        runner.cancel()
        await runner.value
    }

    func tableSQL(_ name: String) throws(StoreError) -> PostgresTableSQL {
        guard let sql = tables[name] else { throw .unknownTable(name) }
        return sql
    }

    // MARK: Apply

    /// Applies a batch in one transaction with its next positions; see `ReplicaStore.apply(batch:consumed:)`.
    ///
    /// A transaction that fails for a passing reason (a deadlock, a serialization failure, a
    /// lost connection) is retried for up to ``retryWindow``: it was rolled back, or, when
    /// a lost connection hid a commit, its events are below the stored positions and skipped.
    public func apply(batch: [SourcedEvent], consumed: [SourcePosition]) async throws -> BatchOutcome {
        let deadline = ContinuousClock.now + Self.retryWindow
        var attempt = 1
        while true {
            do {
                let outcome = try await transaction { connection in try await self.apply(batch, consumed: consumed, on: connection) }
                if !outcome.failures.isEmpty {
                    logger.warning("events failed to apply", metadata: ["count": .stringConvertible(outcome.failures.count)])
                }
                return outcome
            } catch where ContinuousClock.now < deadline && Self.isPassing(error) {
                logger.warning("batch transaction failed, retrying", metadata: [
                    "attempt": .stringConvertible(attempt), "reason": .string(Self.reason(error)),
                ])
                // 20 ms, 40 ms, ... up to 2 s between tries: rides out a server restart or failover.
                try await Task.sleep(for: .milliseconds(20 << min(attempt - 1, 7)))
                attempt += 1
            }
        }
    }

    /// How long a batch's transaction is tried again when it fails for a passing reason.
    public static let retryWindow = Duration.seconds(30)

    /// Whether a failed transaction may succeed when tried again: SQLSTATE class 40
    /// (serialization failure, deadlock), 08 (connection), 57P01-57P03 (server shutting down or
    /// starting), or a connection lost on the client's side.
    static func isPassing(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        if error.code == .server, let state = error.serverInfo?[.sqlState] {
            return state.hasPrefix("40") || state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
        }
        return [.connectionError, .serverClosedConnection, .uncleanShutdown].contains(error.code)
    }

    /// An event of the batch that is to be merged.
    private struct Pending {
        var index: Int
        var event: ChangeEvent
        var sql: PostgresTableSQL
        var rowID: String { sql.table.kafkaKey(for: event.key) }
    }

    /// A merge step failed in a way that concerns the events (bad data, a constraint): the
    /// batch is applied again event by event so that only the failing events are left out.
    private struct EventsFailed: Error {
        var underlying: any Error
    }

    private func apply(_ batch: [SourcedEvent], consumed: [SourcePosition], on connection: PostgresConnection) async throws -> BatchOutcome {
        var partitions = Set(consumed.map(\.partition))
        for item in batch { if let source = item.source { partitions.insert(source.partition) } }
        let stored = try await lockPositions(partitions.sorted(), on: connection)
        var plan = BatchPositions(stored: stored)
        var outcome = BatchOutcome()
        for source in consumed { plan.consume(source) }
        var pending: [Pending] = []
        var failures: [(Int, String)] = []
        for (index, item) in batch.enumerated() {
            if let source = item.source, !plan.admit(source) {
                outcome.skipped += 1
                continue
            }
            do {
                let sql = try tableSQL(item.event.table)
                pending.append(Pending(index: index, event: item.isValidated ? item.event : try sql.table.validate(item.event), sql: sql))
            } catch {
                failures.append((index, Self.reason(error)))
            }
        }
        var results: [Int: RowState.ApplyOutcome] = [:]
        try await connection.query("SAVEPOINT georep_batch", logger: logger)
        do {
            results = try await merge(pending, on: connection)
            try await connection.query("RELEASE SAVEPOINT georep_batch", logger: logger)
        } catch let failed as EventsFailed {
            logger.debug("batch failed, applying event by event", metadata: ["reason": .string(Self.reason(failed.underlying))])
            try await connection.query("ROLLBACK TO SAVEPOINT georep_batch", logger: logger)
            for item in pending {
                try await connection.query("SAVEPOINT georep_event", logger: logger)
                do {
                    results.merge(try await self.merge([item], on: connection)) { first, _ in first }
                    try await connection.query("RELEASE SAVEPOINT georep_event", logger: logger)
                } catch let failed as EventsFailed {
                    try await connection.query("ROLLBACK TO SAVEPOINT georep_event", logger: logger)
                    failures.append((item.index, Self.reason(failed.underlying)))
                }
            }
        }

        var highest = HLCTimestamp.zero
        for item in pending {
            guard let result = results[item.index] else { continue }
            if result.isChanged { outcome.changed += 1 } else { outcome.unchanged += 1 }
            outcome.conflicts += result.conflicts
            highest = max(highest, item.event.hlc)
        }
        for (index, reason) in failures.sorted(by: { $0.0 < $1.0 }) {
            let item = batch[index]
            outcome.failures.append(EventFailure(index: index, source: item.source, reason: reason))
            guard let source = item.source else { continue }
            try await connection.query("""
                INSERT INTO georep_dead_letters (topic, partition, "offset", reason, payload)
                VALUES (\(source.partition.topic), \(source.partition.partition), \(source.offset), \(reason), \(Data(item.event.encodedJSON())))
                """, logger: logger)
        }
        let changedPositions = plan.next.filter { $0.value != stored[$0.key] }
        if !changedPositions.isEmpty {
            let rows = JSONValue.array(changedPositions.map { partition, offset in
                ["topic": .string(partition.topic), "partition": .int(Int64(partition.partition)), "next_offset": .int(offset)]
            })
            try await connection.query("""
                INSERT INTO georep_offsets (topic, partition, next_offset)
                SELECT topic, partition, next_offset FROM json_to_recordset(\(rows.jsonText)::json) AS p(topic text, partition integer, next_offset bigint)
                ON CONFLICT (topic, partition) DO UPDATE SET next_offset = GREATEST(georep_offsets.next_offset, excluded.next_offset)
                """, logger: logger)
        }
        if highest > .zero { try await raiseHighWaterMark(highest, on: connection) }
        // The stored positions too: a retry whose first try committed unseen skips every event,
        // and its caller must still learn where the partitions are.
        outcome.positions = stored.filter { $0.value > 0 }.merging(plan.next, uniquingKeysWith: max)
        return outcome
    }

    /// Locks the offset rows of `partitions` (creating missing ones) until the transaction
    /// ends, and returns their stored positions: a second applier of the same partitions waits
    /// here, then sees the positions the first one committed.
    private func lockPositions(_ partitions: [TopicPartition], on connection: PostgresConnection) async throws -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let rows = JSONValue.array(partitions.map { ["topic": .string($0.topic), "partition": .int(Int64($0.partition))] })
        var stored: [TopicPartition: Int64] = [:]
        let result = try await connection.query("""
            INSERT INTO georep_offsets (topic, partition, next_offset)
            SELECT topic, partition, 0 FROM json_to_recordset(\(rows.jsonText)::json) AS p(topic text, partition integer)
            ON CONFLICT (topic, partition) DO UPDATE SET next_offset = georep_offsets.next_offset
            RETURNING topic, partition, next_offset
            """, logger: logger)
        for try await (topic, partition, offset) in result.decode((String, Int32, Int64).self) {
            stored[TopicPartition(topic: topic, partition: partition)] = offset
        }
        return stored
    }

    /// Takes a transaction-scoped lock per row, in a fixed order (no deadlocks between
    /// batches), so that merges of the same row never interleave, even for rows not yet stored.
    ///
    /// Called by ``merge(_:on:)``, inside the batch's (or the event's) savepoint: a key the
    /// server cannot take fails that savepoint like any other error of the event's data.
    private func lockRows(_ rowIDs: [String], on connection: PostgresConnection) async throws {
        guard !rowIDs.isEmpty else { return }
        do {
            try await connection.query(
                "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtextextended(id, 0)) FROM unnest(\(rowIDs)::text[]) AS id) AS locked",
                logger: logger)
        } catch {
            throw Self.isDataError(error) ? EventsFailed(underlying: error) : error
        }
    }

    /// Merges events into their rows, table by table: reads the rows under lock, applies the
    /// events with `RowState.apply` in batch order, writes the changed rows, conflicts and
    /// pinned homes. Returns each event's outcome by batch index.
    private func merge(_ pending: [Pending], on connection: PostgresConnection) async throws -> [Int: RowState.ApplyOutcome] {
        try await lockRows(Set(pending.map(\.rowID)).sorted(), on: connection)
        var results: [Int: RowState.ApplyOutcome] = [:]
        var conflicts: [Conflict] = []
        // By the bytes of `<table>/<key>` (see RowIdentity).
        var homes: [[UInt8]: (TableSchema, [String: JSONValue], String)] = [:]
        let byTable = Dictionary(grouping: pending, by: \.sql.table.name)
        for name in byTable.keys.sorted() {
            guard let events = byTable[name], let sql = events.first?.sql else { continue }
            var rows: [RowIdentity: RowState]
            do {
                rows = try await loadStates(sql, keys: events.map(\.event.key), locking: true, on: connection)
            } catch {
                // An unreadable stored state concerns the events of that row.
                throw error is StoreError || Self.isDataError(error) ? EventsFailed(underlying: error) : error
            }
            var changed: [RowIdentity] = []
            for item in events {
                let id = sql.table.rowIdentity(item.event.key)
                var row = rows[id] ?? RowState(table: sql.table, key: item.event.key)
                let result = row.apply(item.event, conflictWindowMillis: config.conflictWindowMillis)
                rows[id] = row
                results[item.index] = result
                if result.isChanged, !changed.contains(id) { changed.append(id) }
                conflicts += result.conflicts
                // A claim of a pinned row's home (no content): the first of the batch, as the
                // store keeps the first claim of a row.
                if item.event.op == .locate, homes[Array(item.rowID.utf8)] == nil,
                   let home = item.event.columns[TableSchema.homeRegionColumn]?.stringValue {
                    homes[Array(item.rowID.utf8)] = (sql.table, item.event.key, home)
                }
            }
            let written = JSONValue.array(changed.compactMap { rows[$0].map(sql.rowObject) })
            if !changed.isEmpty { try await run(sql.upsert, json: written, on: connection) }
        }
        if !conflicts.isEmpty { try await record(conflicts, on: connection) }
        if !homes.isEmpty {
            let entries = JSONValue.array(homes.values.map { table, key, home in
                ["table_name": .string(table.name), "row_key": .string(table.keyText(key)), "home_region": .string(home)]
            })
            try await run("""
                INSERT INTO georep_pinned_directory (table_name, row_key, home_region)
                SELECT table_name, row_key, home_region FROM json_to_recordset($1::json) AS d(table_name text, row_key text, home_region text)
                ON CONFLICT (table_name, row_key) DO NOTHING
                """, json: entries, on: connection)
        }
        return results
    }

    /// Runs a statement whose `$1` is a JSON document; errors that concern the data become `EventsFailed`.
    private func run(_ sql: String, json: JSONValue, on connection: PostgresConnection) async throws {
        var binds = PostgresBindings()
        binds.append(json.jsonText)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        } catch {
            throw Self.isDataError(error) ? EventsFailed(underlying: error) : error
        }
    }

    /// The stored rows of `keys` by key text; with `locking`, locked until the transaction ends.
    func loadStates(_ sql: PostgresTableSQL, keys: [[String: JSONValue]], locking: Bool, on connection: PostgresConnection) async throws -> [RowIdentity: RowState] {
        var unique: [RowIdentity: JSONValue] = [:]
        for key in keys { unique[sql.table.rowIdentity(key)] = sql.keyObject(key) }
        var binds = PostgresBindings()
        binds.append(JSONValue.array(Array(unique.values)).jsonText)
        let statement = locking ? sql.selectStates + " FOR UPDATE OF t" : sql.selectStates
        var rows: [RowIdentity: RowState] = [:]
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: statement, binds: binds), logger: logger) {
            let cells = row.makeRandomAccess()
            let key = try sql.key(from: cells)
            rows[sql.table.rowIdentity(key)] = RowState(table: sql.table, key: key, state: try sql.mergeState(from: cells, start: sql.table.key.count))
        }
        return rows
    }

    private func record(_ conflicts: [Conflict], on connection: PostgresConnection) async throws {
        let rows = JSONValue.array(conflicts.compactMap { conflict in
            guard let table = config.table(named: conflict.table) else { return nil }
            return [
                "table_name": .string(conflict.table), "row_key": .string(table.keyText(conflict.key)),
                "key_json": .string(JSONValue.object(conflict.key).jsonText), "column_name": conflict.column.map(JSONValue.string) ?? .null,
                "winner_hlc": .int(Int64(bitPattern: conflict.winner.stamp.hlc.rawValue)), "winner_origin": .string(conflict.winner.stamp.origin),
                "winner_value": .string(conflict.winner.value.jsonText),
                "loser_hlc": .int(Int64(bitPattern: conflict.loser.stamp.hlc.rawValue)), "loser_origin": .string(conflict.loser.stamp.origin),
                "loser_value": .string(conflict.loser.value.jsonText),
            ]
        })
        try await run("""
            INSERT INTO georep_conflicts (table_name, row_key, key_json, column_name, winner_hlc, winner_origin, winner_value,
                loser_hlc, loser_origin, loser_value)
            SELECT * FROM json_to_recordset($1::json) AS c(table_name text, row_key text, key_json text, column_name text,
                winner_hlc bigint, winner_origin text, winner_value text, loser_hlc bigint, loser_origin text, loser_value text)
            ON CONFLICT DO NOTHING
            """, json: rows, on: connection)
    }

    func raiseHighWaterMark(_ timestamp: HLCTimestamp, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE georep_clock SET high_water_mark = GREATEST(high_water_mark, \(Int64(bitPattern: timestamp.rawValue))) WHERE id = 1",
            logger: logger)
    }

    /// Runs `body` in a transaction on one connection: committed when it returns, rolled back when it throws.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await connection.query("BEGIN", logger: self.logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: self.logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: self.logger)
                throw error
            }
        }
    }

    /// Whether a server error concerns the event's data (classes 22 data exception, 23
    /// integrity constraint, 54 program limit exceeded such as an index row too large, P0 raised
    /// by a trigger): the event is dead-lettered and the batch goes on. Anything else (a revoked
    /// privilege or a dropped column, class 42; a deadlock or a lost connection, retried) fails
    /// the batch, rather than send every event of a table to the dead-letter topic while
    /// positions advance.
    private static func isDataError(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return ["22", "23", "54", "P0"].contains(String(state.prefix(2)))
    }

    /// A failure reason for the dead-letter header: names the problem, never bound values.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as PSQLError:
            if let info = error.serverInfo {
                "PostgreSQL error \(info[.sqlState] ?? "?"): \(info[.message] ?? "unknown")"
            } else {
                "PostgreSQL \(error.code)"
            }
        case let error as EventRejection:
            error.description
        case let error as StoreError:
            error.description
        case let error as EventsFailed:
            reason(error.underlying)
        default:
            String(describing: error)
        }
    }
}
