import Foundation
public import GeorepLog
import GeorepModel
import GRDB
import Logging

/// Applying a batch of events and their positions in one SQLite transaction.
extension SQLiteStore {
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
    func apply(_ batch: [SourcedEvent], consumed: [SourcePosition], in db: Database) throws -> BatchOutcome {
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
    struct WriteFailedInBatch: Error {}

    func applyEvents(
        _ batch: [SourcedEvent], consumed: [SourcePosition], stored: [TopicPartition: Int64], isolatingEachEvent: Bool, in db: Database
    ) throws -> BatchOutcome {
        var outcome = BatchOutcome()
        var plan = BatchPositions(stored: stored)
        for source in consumed { plan.consume(source) }
        var highest = HLCTimestamp.zero
        var statements = BatchStatements()
        for (index, item) in batch.enumerated() {
            if let source = item.source, !plan.admit(source) {
                outcome.skipped += 1
                continue
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
        let next = plan.next
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
    func prepare(_ item: SourcedEvent) throws -> (TableSQL, ChangeEvent) {
        let sql = try tableSQL(item.event.table)
        return (sql, item.isValidated ? item.event : try sql.table.validate(item.event))
    }

    /// Statements of one transaction by table: GRDB's statement cache is keyed by the SQL text,
    /// which it hashes on every lookup, so a batch looks each statement up once.
    struct BatchStatements {
        enum Kind: Hashable { case plainUpsert, upsert, selectState }
        struct Key: Hashable {
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

    func applyOne(_ event: ChangeEvent, _ sql: TableSQL, statements: inout BatchStatements, in db: Database) throws -> RowState.ApplyOutcome {
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
    func loadState(_ sql: TableSQL, key: [String: JSONValue], using statement: Statement) throws -> RowMergeState? {
        guard let stored = try Row.fetchOne(statement, arguments: sql.keyArguments(key)) else { return nil }
        return try sql.mergeState(from: stored, start: 0)
    }

    func record(_ conflict: Conflict, table: TableSchema, in db: Database) throws {
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

    func raiseHighWaterMark(_ timestamp: HLCTimestamp, in db: Database) throws {
        try db.cachedStatement(sql: "UPDATE georep_clock SET high_water_mark = max(high_water_mark, ?) WHERE id = 1")
            .execute(arguments: [Int64(bitPattern: timestamp.rawValue)])
    }

    func loadPositions(_ db: Database) throws -> [TopicPartition: Int64] {
        var positions: [TopicPartition: Int64] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT topic, partition, next_offset FROM georep_offsets")) {
            positions[TopicPartition(topic: row[0], partition: row[1])] = row[2]
        }
        return positions
    }

    /// A failure reason for the dead-letter header: names the problem, never bound values.
    static func reason(_ error: any Error) -> String {
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
}
