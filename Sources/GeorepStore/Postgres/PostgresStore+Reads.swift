public import GeorepLog
import Foundation
public import GeorepModel
import PostgresNIO

extension PostgresStore {
    // MARK: Reads

    /// The stored positions: the next offset to consume per source topic partition.
    public func positions() async throws -> [TopicPartition: Int64] {
        var positions: [TopicPartition: Int64] = [:]
        for try await (topic, partition, offset) in try await client.query("SELECT topic, partition, next_offset FROM georep_offsets", logger: logger)
            .decode((String, Int32, Int64).self) {
            positions[TopicPartition(topic: topic, partition: partition)] = offset
        }
        return positions
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
        let states = try await client.withConnection { connection in
            try await self.loadStates(sql, keys: [key], locking: false, on: connection)
        }
        return states[sql.table.rowIdentity(key)] ?? RowState(table: sql.table, key: key)
    }

    /// Every visible row of a table, in key order (text keys in byte order, as in SQLite).
    public func snapshot(table: String) async throws -> [[String: JSONValue]] {
        let sql = try tableSQL(table)
        var rows: [[String: JSONValue]] = []
        for try await row in try await client.query(PostgresQuery(unsafeSQL: sql.selectSnapshot), logger: logger) {
            let cells = row.makeRandomAccess()
            let key = try sql.key(from: cells)
            let state = try sql.mergeState(from: cells, start: sql.table.key.count)
            if let view = RowState(table: sql.table, key: key, state: state).view { rows.append(view) }
        }
        return rows
    }

    /// The number of recorded conflicts.
    public func conflictCount() async throws -> Int {
        var count = 0
        for try await value in try await client.query("SELECT count(*) FROM georep_conflicts", logger: logger).decode(Int.self) {
            count = value
        }
        return count
    }

    /// The most recent recorded conflicts, newest first.
    public func conflicts(limit: Int) async throws -> [ConflictRecord] {
        let rows = try await client.query("""
            SELECT id, table_name, key_json, column_name, winner_hlc, winner_origin, winner_value, loser_hlc, loser_origin, loser_value
            FROM georep_conflicts ORDER BY id DESC LIMIT \(max(0, limit))
            """, logger: logger)
        var records: [ConflictRecord] = []
        for try await (id, table, keyJSON, column, winnerHLC, winnerOrigin, winnerValue, loserHLC, loserOrigin, loserValue)
            in rows.decode((Int64, String, String, String?, Int64, String, String, Int64, String, String).self) {
            func register(_ hlc: Int64, _ origin: String, _ value: String) -> LWWRegister<JSONValue> {
                LWWRegister(stamp: Stamp(hlc: HLCTimestamp(rawValue: UInt64(bitPattern: hlc)), origin: origin),
                            value: JSONValue(parsing: Array(value.utf8)) ?? .null)
            }
            let conflict = Conflict(
                table: table, key: JSONValue(parsing: Array(keyJSON.utf8))?.objectValue ?? [:], column: column,
                winner: register(winnerHLC, winnerOrigin, winnerValue), loser: register(loserHLC, loserOrigin, loserValue))
            records.append(ConflictRecord(id: id, conflict: conflict))
        }
        return records
    }

    /// The highest HLC applied or recorded.
    public func highWaterMark() async throws -> HLCTimestamp {
        var mark: Int64 = 0
        for try await value in try await client.query("SELECT high_water_mark FROM georep_clock WHERE id = 1", logger: logger).decode(Int64.self) {
            mark = value
        }
        return HLCTimestamp(rawValue: UInt64(bitPattern: mark))
    }

    /// Raises the stored high-water mark to at least `timestamp`.
    public func recordHighWaterMark(_ timestamp: HLCTimestamp) async throws {
        try await transaction { connection in try await self.raiseHighWaterMark(timestamp, on: connection) }
    }

    // MARK: Dead letters

    /// Claims dead letters not yet produced; see `ReplicaStore.claimDeadLetters(limit:lease:)`.
    /// Concurrent claims skip the rows another one is claiming, and the lease runs on the
    /// server's clock, which every process sharing the store reads.
    public func claimDeadLetters(limit: Int, lease: Duration) async throws -> [DeadLetter] {
        let leaseSeconds = lease / .seconds(1)
        let rows = try await client.query(#"""
            UPDATE georep_dead_letters SET claimed_until = now() + make_interval(secs => \#(leaseSeconds))
            WHERE id IN (SELECT id FROM georep_dead_letters WHERE claimed_until IS NULL OR claimed_until <= now()
                         ORDER BY id LIMIT \#(max(0, limit)) FOR UPDATE SKIP LOCKED)
            RETURNING id, topic, partition, "offset", reason, payload
            """#, logger: logger)
        var letters: [DeadLetter] = []
        for try await (id, topic, partition, offset, reason, payload) in rows.decode((Int64, String?, Int32?, Int64?, String, Data).self) {
            let source = topic.flatMap { topic in
                partition.flatMap { partition in offset.map { SourcePosition(topic: topic, partition: partition, offset: $0) } }
            }
            letters.append(DeadLetter(id: id, source: source, reason: reason, payload: Array(payload)))
        }
        return letters.sorted { $0.id < $1.id }
    }

    /// Forgets dead letters that were produced.
    public func removeDeadLetters(ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await client.query("DELETE FROM georep_dead_letters WHERE id = ANY(\(ids))", logger: logger)
    }

    // MARK: Pinned directory

    /// The home region of a pinned row, from the directory.
    public func pinnedHome(table: String, key: [String: JSONValue]) async throws -> String? {
        let schema = try tableSQL(table).table
        var home: String?
        for try await region in try await client.query(
            "SELECT home_region FROM georep_pinned_directory WHERE table_name = \(table) AND row_key = \(schema.keyText(key))", logger: logger
        ).decode(String.self) {
            home = region
        }
        return home
    }

    /// Records a pinned row's home region in the directory, unless it names one already: the
    /// first claim of a row wins.
    public func recordPinnedHome(table: String, key: [String: JSONValue], region: String) async throws {
        let schema = try tableSQL(table).table
        try await client.query("""
            INSERT INTO georep_pinned_directory (table_name, row_key, home_region) VALUES (\(table), \(schema.keyText(key)), \(region))
            ON CONFLICT (table_name, row_key) DO NOTHING
            """, logger: logger)
    }

    // MARK: Regions and replication status

    /// Inserts or replaces regions' rows of `georep_region_config`.
    public func saveRegionConfigs(_ records: [RegionConfigRecord]) async throws {
        try await transaction { connection in
            for record in records {
                try await connection.query("""
                    INSERT INTO georep_region_config (region_id, kafka, http, is_primary, is_accepting_writes, epoch, updated_at)
                    VALUES (\(record.regionID), \(record.kafka), \(record.http), \(record.isPrimary), \(record.isAcceptingWrites),
                        \(Int64(clamping: record.epoch)), now())
                    ON CONFLICT (region_id) DO UPDATE SET kafka = excluded.kafka, http = excluded.http, is_primary = excluded.is_primary,
                        is_accepting_writes = excluded.is_accepting_writes, epoch = excluded.epoch, updated_at = excluded.updated_at
                    """, logger: self.logger)
            }
        }
    }

    /// The rows of `georep_region_config`, by region id.
    public func regionConfigs() async throws -> [RegionConfigRecord] {
        var records: [RegionConfigRecord] = []
        for try await (region, kafka, http, isPrimary, isAccepting, epoch) in try await client.query(
            "SELECT region_id, kafka, http, is_primary, is_accepting_writes, epoch FROM georep_region_config ORDER BY region_id COLLATE \"C\"",
            logger: logger
        ).decode((String, String, String, Bool, Bool, Int64).self) {
            records.append(RegionConfigRecord(regionID: region, kafka: kafka, http: http, isPrimary: isPrimary,
                                              isAcceptingWrites: isAccepting, epoch: UInt64(max(0, epoch))))
        }
        return records
    }

    /// Inserts or replaces rows of `georep_replication_status`.
    public func saveReplicationStatus(_ records: [ReplicationStatusRecord]) async throws {
        try await transaction { connection in
            for record in records {
                try await connection.query("""
                    INSERT INTO georep_replication_status (source_region, target_region, last_lsn, lag_records, lag_ms, updated_at)
                    VALUES (\(record.sourceRegion), \(record.targetRegion), \(record.lastLSN), \(record.lagRecords), \(record.lagMillis), \(record.updatedAt))
                    ON CONFLICT (source_region, target_region) DO UPDATE SET last_lsn = excluded.last_lsn,
                        lag_records = excluded.lag_records, lag_ms = excluded.lag_ms, updated_at = excluded.updated_at
                    """, logger: self.logger)
            }
        }
    }

    /// The rows of `georep_replication_status`, by source then target region.
    public func replicationStatus() async throws -> [ReplicationStatusRecord] {
        var records: [ReplicationStatusRecord] = []
        for try await (source, target, lsn, lagRecords, lagMillis, updated) in try await client.query("""
            SELECT source_region, target_region, last_lsn, lag_records, lag_ms, updated_at
            FROM georep_replication_status ORDER BY source_region COLLATE "C", target_region COLLATE "C"
            """, logger: logger).decode((String, String, Int64, Int64, Int64, Date).self) {
            records.append(ReplicationStatusRecord(sourceRegion: source, targetRegion: target, lastLSN: lsn, lagRecords: lagRecords,
                                                   lagMillis: lagMillis, updatedAt: updated))
        }
        return records
    }
}
