import GeorepLog
import Foundation
import GeorepModel
import GeorepStore
import Testing

/// What every store does, checked against SQLite and PostgreSQL alike.
@Suite struct ReplicaStoreTests {
    let topic = "georep.eu-west-1.changes"

    private func upsert(_ user: Int64, _ name: String, at millis: UInt64, from origin: String = "eu-west-1") -> ChangeEvent {
        ChangeEvent(origin: origin, table: "user_profile", key: ["user_id": .int(user)], op: .upsert,
                    hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1, columns: ["display_name": .string(name)])
    }

    private func sourced(_ event: ChangeEvent, offset: Int64, partition: Int32 = 0) -> SourcedEvent {
        SourcedEvent(event, source: SourcePosition(topic: topic, partition: partition, offset: offset))
    }

    @Test(arguments: StoreKind.allCases)
    func appliesRowsAndOffsetsTogetherAndReadsThemBack(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            let outcome = try await store.apply(batch: [
                sourced(upsert(1, "Ann", at: 100), offset: 10),
                sourced(upsert(1, "Ann2", at: 200), offset: 11),
                sourced(upsert(3, "Cy", at: 150), offset: 5, partition: 2),
            ])
            #expect(outcome.changed == 3)
            #expect(outcome.failures.isEmpty)
            let expected = [TopicPartition(topic: topic, partition: 0): Int64(12), TopicPartition(topic: topic, partition: 2): 6]
            #expect(outcome.positions == expected)
            #expect(try await store.positions() == expected)
            #expect(try await store.row(table: "user_profile", key: ["user_id": 1]) == ["user_id": 1, "display_name": "Ann2", "bio": nil])
            #expect(try await store.row(table: "user_profile", key: ["user_id": 99]) == nil)
            #expect(try await store.highWaterMark() == HLCTimestamp(millis: 200, logical: 0))
            #expect(try await store.snapshot(table: "user_profile").map { $0["user_id"] } == [1, 3])
            let rows = try await scratch.strings("SELECT CAST(user_id AS TEXT), display_name FROM user_profile ORDER BY user_id")
            #expect(rows == [["1", "Ann2"], ["3", "Cy"]], "users can select the view named after the table")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func eventsBelowTheStoredPositionAreSkipped(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            _ = try await store.apply(batch: [sourced(upsert(1, "new", at: 200), offset: 7)])
            let replay = try await store.apply(batch: [sourced(upsert(1, "old-but-replayed", at: 300), offset: 6)])
            #expect(replay.skipped == 1)
            #expect(try await store.row(table: "user_profile", key: ["user_id": 1])?["display_name"] == "new")
            #expect(try await store.positions()[TopicPartition(topic: topic, partition: 0)] == 8)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func reopeningResumesPositionsHighWaterMarkAndRows(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let first = try await scratch.open()
            _ = try await first.apply(batch: [sourced(upsert(1, "Ann", at: 500), offset: 41)])
            try await first.recordHighWaterMark(HLCTimestamp(millis: 900, logical: 3))
            try await first.recordHighWaterMark(HLCTimestamp(millis: 800, logical: 0))
            try await scratch.close(first)
            let reopened = try await scratch.open()
            #expect(try await reopened.positions() == [TopicPartition(topic: topic, partition: 0): 42])
            #expect(try await reopened.highWaterMark() == HLCTimestamp(millis: 900, logical: 3))
            #expect(try await reopened.row(table: "user_profile", key: ["user_id": 1])?["display_name"] == "Ann")
            // A clock restarted from the stored floor never goes backward.
            let clock = HybridLogicalClock(floor: try await reopened.highWaterMark(), wallClock: { 10 })
            #expect(clock.now() > HLCTimestamp(millis: 900, logical: 3))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func anInterruptedBatchLeavesNeitherRowsNorOffsets(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            _ = try await store.apply(batch: [sourced(upsert(1, "before", at: 100), offset: 0)])
            // Writing the offsets fails: all of the transaction rolls back.
            try await scratch.execute(
                sqlite: "CREATE TRIGGER crash BEFORE UPDATE ON georep_offsets BEGIN SELECT RAISE(ABORT, 'disk gone'); END",
                postgres: "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk gone'; END $$",
                "CREATE TRIGGER crash BEFORE UPDATE ON georep_offsets FOR EACH ROW EXECUTE FUNCTION crash()")
            await #expect(throws: (any Error).self) {
                try await store.apply(batch: [sourced(upsert(1, "lost", at: 200), offset: 1), sourced(upsert(2, "lost", at: 201), offset: 2)])
            }
            #expect(try await store.row(table: "user_profile", key: ["user_id": 1])?["display_name"] == "before")
            #expect(try await store.row(table: "user_profile", key: ["user_id": 2]) == nil)
            #expect(try await store.positions() == [TopicPartition(topic: topic, partition: 0): 1])
            #expect(try await store.highWaterMark() == HLCTimestamp(millis: 100, logical: 0))
            #expect(try await store.claimDeadLetters(limit: 10, lease: .zero).isEmpty)
            // Redelivered after the failure, the batch applies.
            try await scratch.execute(sqlite: "DROP TRIGGER crash", postgres: "DROP TRIGGER crash ON georep_offsets")
            _ = try await store.apply(batch: [sourced(upsert(1, "lost", at: 200), offset: 1), sourced(upsert(2, "lost", at: 201), offset: 2)])
            #expect(try await store.snapshot(table: "user_profile").count == 2)
            #expect(try await store.positions() == [TopicPartition(topic: topic, partition: 0): 3])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aFailingEventIsReportedAndTheRestOfTheBatchApplies(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            try await scratch.execute(
                sqlite: """
                    CREATE TRIGGER refuse13 BEFORE INSERT ON georep_rows_user_profile WHEN NEW.user_id = 13
                    BEGIN SELECT RAISE(ABORT, 'user 13 is refused'); END
                    """,
                postgres: """
                    CREATE FUNCTION refuse13() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.user_id = 13 THEN RAISE EXCEPTION 'user 13 is refused'; END IF; RETURN NEW; END $$
                    """,
                "CREATE TRIGGER refuse13 BEFORE INSERT ON georep_rows_user_profile FOR EACH ROW EXECUTE FUNCTION refuse13()")
            let unknownTable = ChangeEvent(origin: "eu-west-1", table: "orders", key: ["id": 1], op: .upsert,
                                           hlc: HLCTimestamp(millis: 5, logical: 0), epoch: 1)
            let outcome = try await store.apply(batch: [
                sourced(upsert(12, "a", at: 100), offset: 0),
                sourced(upsert(13, "b", at: 101), offset: 1),
                sourced(unknownTable, offset: 2),
                sourced(upsert(14, "c", at: 102), offset: 3),
            ])
            #expect(outcome.failures.map(\.index) == [1, 2])
            #expect(outcome.failures.first?.reason.contains("user 13 is refused") == true)
            #expect(outcome.failures.last?.reason == "unknown table orders")
            #expect(outcome.changed == 2)
            #expect(try await store.snapshot(table: "user_profile").map { $0["user_id"] } == [12, 14])
            #expect(try await store.positions() == [TopicPartition(topic: topic, partition: 0): 4])
            let letters = try await store.claimDeadLetters(limit: 10, lease: .seconds(60))
            #expect(letters.map(\.source?.offset) == [1, 2])
            #expect(letters.first.map { try? ChangeEventCodec.decodeUnvalidated(Data($0.payload)) } == upsert(13, "b", at: 101))
            try await store.removeDeadLetters(ids: letters.map(\.id))
            #expect(try await store.claimDeadLetters(limit: 10, lease: .zero).isEmpty)
        }
    }

    /// A transaction retried after its first try committed unseen (a connection lost before the
    /// reply) skips every event; the positions it reports are still the partitions' own.
    @Test(arguments: StoreKind.allCases)
    func aBatchAppliedAgainReportsTheStoredPositions(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            let batch = [sourced(upsert(1, "Ann", at: 100), offset: 10), sourced(upsert(2, "Bo", at: 100), offset: 4, partition: 1)]
            let first = try await store.apply(batch: batch)
            let again = try await store.apply(batch: batch)
            #expect(again.skipped == 2)
            #expect(again.positions == first.positions, "\(again.positions) after \(first.positions)")
        }
    }

    /// Swift's strings compare by canonical equivalence; the stores compare bytes: a key typed
    /// precomposed and the same key typed decomposed are two rows, in one batch or two.
    @Test(arguments: StoreKind.allCases)
    func keysEqualOnlyUnderCanonicalEquivalenceAreTwoRows(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            let composed = "Jos\u{E9}", decomposed = "Jose\u{301}"
            #expect(composed == decomposed && Array(composed.utf8) != Array(decomposed.utf8))
            func note(_ key: String, _ text: String, at millis: UInt64) -> ChangeEvent {
                ChangeEvent(origin: "eu-west-1", table: "cart", key: ["cart_id": .string(key)], op: .upsert,
                            hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1, columns: ["note": .string(text)])
            }
            let outcome = try await store.apply(batch: [sourced(note(composed, "one", at: 10), offset: 0), sourced(note(decomposed, "two", at: 20), offset: 1)])
            #expect(outcome.failures.isEmpty)
            let notes = try await store.snapshot(table: "cart").map { $0["note"] }
            #expect(notes.count == 2 && Set(notes) == ["one", "two"], "\(notes)")
        }
    }

    /// Issue 15: one event whose data a store cannot keep (U+0000 in a key or a value, a key
    /// longer than PostgreSQL indexes) is dead-lettered with the model's reason in both stores,
    /// and the rest of its batch is applied: a single event never stops a region.
    @Test(arguments: StoreKind.allCases)
    func poisonEventsAreDeadLetteredAndTheBatchGoesOn(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            func note(_ key: String, _ text: String, at millis: UInt64) -> ChangeEvent {
                ChangeEvent(origin: "eu-west-1", table: "cart", key: ["cart_id": .string(key)], op: .upsert,
                            hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1, columns: ["note": .string(text)])
            }
            let outcome = try await store.apply(batch: [
                sourced(note("zz", "kept", at: 10), offset: 0),
                sourced(note("zz\u{0}evil", "overwrite", at: 11), offset: 1),
                sourced(note(String(repeating: "k", count: 3_000), "long", at: 12), offset: 2),
                sourced(note("v", "a\u{0}b", at: 13), offset: 3),
                sourced(note("after", "kept too", at: 14), offset: 4),
            ])
            #expect(outcome.failures.map(\.index) == [1, 2, 3])
            #expect(outcome.failures.allSatisfy { $0.reason.contains("U+0000") || $0.reason.contains("at most 1024") }, "\(outcome.failures)")
            #expect(try await store.positions()[TopicPartition(topic: topic, partition: 0)] == 5)
            let rows = try await store.snapshot(table: "cart").map { [$0["cart_id"], $0["note"]] }
            #expect(rows == [["after", "kept too"], ["zz", "kept"]], "\(rows)")
            #expect(try await store.claimDeadLetters(limit: 10, lease: .zero).compactMap(\.source?.offset) == [1, 2, 3])
        }
    }

    /// A writer's local apply has no source position: the applier reads the event from the log
    /// and dead-letters it then, if it fails again; a letter now would be a second one.
    @Test(arguments: StoreKind.allCases)
    func aFailedEventWithoutSourceIsReportedButNotDeadLettered(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            let outcome = try await store.apply(batch: [SourcedEvent(ChangeEvent(
                origin: "eu-west-1", table: "orders", key: ["id": 1], op: .upsert, hlc: HLCTimestamp(millis: 5, logical: 0), epoch: 1))])
            #expect(outcome.failures.map(\.index) == [0])
            #expect(try await store.claimDeadLetters(limit: 10, lease: .zero).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aClaimedDeadLetterIsLeftToItsClaimerUntilTheLeaseEnds(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            /// Stores a dead letter per offset: events of a table the configuration lacks.
            func refuse(_ offsets: Range<Int64>) async throws {
                let outcome = try await store.apply(batch: offsets.map { offset in
                    sourced(ChangeEvent(origin: "eu-west-1", table: "orders", key: ["id": .int(offset)], op: .upsert,
                                        hlc: HLCTimestamp(millis: 5, logical: 0), epoch: 1), offset: offset)
                })
                #expect(outcome.failures.count == offsets.count)
            }
            try await refuse(0..<3)
            // A claim whose lease has ended (its claimer stopped) is taken again; a live one is not.
            #expect(try await store.claimDeadLetters(limit: 10, lease: .zero).map(\.source?.offset) == [0, 1, 2])
            let held = try await store.claimDeadLetters(limit: 10, lease: .seconds(60))
            #expect(held.map(\.source?.offset) == [0, 1, 2])
            #expect(try await store.claimDeadLetters(limit: 10, lease: .seconds(60)).isEmpty)

            // Two claimers at once share the new letters out: none is given to both.
            try await refuse(3..<6)
            async let first = store.claimDeadLetters(limit: 2, lease: .seconds(60))
            async let second = store.claimDeadLetters(limit: 2, lease: .seconds(60))
            let (one, other) = try await (first, second)
            #expect(Set(one.map(\.id)).isDisjoint(with: other.map(\.id)))
            #expect(Set((one + other).compactMap(\.source?.offset)) == [3, 4, 5])

            try await store.removeDeadLetters(ids: (held + one + other).map(\.id))
            #expect(try await store.claimDeadLetters(limit: 10, lease: .zero).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func anEventFailingAfterItsRowWasWrittenLeavesNoTrace(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            try await scratch.execute(
                sqlite: "CREATE TRIGGER noConflicts BEFORE INSERT ON georep_conflicts BEGIN SELECT RAISE(ABORT, 'conflicts are full'); END",
                postgres: "CREATE FUNCTION full_conflicts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'conflicts are full'; END $$",
                "CREATE TRIGGER noConflicts BEFORE INSERT ON georep_conflicts FOR EACH ROW EXECUTE FUNCTION full_conflicts()")
            let outcome = try await store.apply(batch: [
                sourced(upsert(7, "us", at: 1000, from: "us-east-1"), offset: 0),
                sourced(upsert(7, "eu", at: 1400, from: "eu-west-1"), offset: 1),
                sourced(upsert(8, "other", at: 1500), offset: 2),
            ])
            #expect(outcome.failures.map(\.index) == [1])
            #expect(try await store.row(table: "user_profile", key: ["user_id": 7])?["display_name"] == "us",
                    "the row write of the failed event is rolled back with it")
            #expect(try await store.row(table: "user_profile", key: ["user_id": 8])?["display_name"] == "other")
            #expect(try await store.positions() == [TopicPartition(topic: topic, partition: 0): 3])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func conflictsAreRecordedOnceWithBothVersions(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            let us = upsert(7, "us", at: 1000, from: "us-east-1")
            let eu = upsert(7, "eu", at: 1400, from: "eu-west-1")
            let outcome = try await store.apply(batch: [SourcedEvent(us), SourcedEvent(eu), SourcedEvent(us)])
            #expect(outcome.conflicts.count == 2, "the replayed loser meets the winner again")
            #expect(try await store.conflictCount() == 1, "the same pair is stored once")
            let record = try #require(try await store.conflicts(limit: 10).first)
            #expect(record.conflict.table == "user_profile")
            #expect(record.conflict.key == ["user_id": 7])
            #expect(record.conflict.column == nil)
            #expect(record.conflict.winner.stamp == eu.stamp)
            #expect(record.conflict.winner.value.objectValue?["display_name"] == "eu")
            #expect(record.conflict.loser.stamp == us.stamp)
            #expect(record.conflict.loser.value.objectValue?["display_name"] == "us")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func crdtRowsRoundTripThroughTheStore(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            let cart = StoreFixtures.table("cart")
            var row = RowState(table: cart, key: ["cart_id": "c1"])
            var events: [ChangeEvent] = []
            func context(_ millis: UInt64) -> WriteContext { WriteContext(origin: "us-east-1", hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1) }
            for event in [
                try row.makeAdd(["items": ["b", "a"], "saved": ["x", "y"]], context: context(10)),
                try row.makeIncrement(["views": 5], context: context(11)),
                try row.makeUpsert(["note": "hi"], context: context(12)),
            ] {
                row.apply(event)
                events.append(event)
            }
            let remove = try row.makeRemove(["saved": ["x"]], context: context(13))
            row.apply(remove)
            events.append(remove)
            _ = try await store.apply(batch: events.map { SourcedEvent($0) })
            let stored = try await store.rowState(table: "cart", key: ["cart_id": "c1"])
            #expect(stored == row)
            #expect(try await store.row(table: "cart", key: ["cart_id": "c1"]) == ["cart_id": "c1", "items": ["a", "b"], "saved": ["y"], "views": 5, "note": "hi"])
            let raw = try await scratch.strings("SELECT CAST(items AS TEXT), CAST(saved AS TEXT), CAST(views AS TEXT), note FROM cart")
            #expect(raw == [[#"["a","b"]"#, #"["y"]"#, "5", "hi"]])
            _ = try await store.apply(batch: [SourcedEvent(upsert(1, "Ann", at: 10))])
            #expect(try await scratch.strings("SELECT georep_state FROM georep_rows_user_profile") == [[nil]])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func plainLWWRowsKeepNoMergeStateJSON(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            _ = try await store.apply(batch: [SourcedEvent(upsert(1, "Ann", at: 10)), SourcedEvent(upsert(1, "Bo", at: 20))])
            let state = try await store.rowState(table: "user_profile", key: ["user_id": 1])
            #expect(state.state.isPlainRow)
            #expect(state.view?["display_name"] == "Bo")
            let plainRows = try await scratch.strings("SELECT CAST(count(*) AS TEXT) FROM georep_rows_user_profile WHERE georep_state IS NULL")
            #expect(plainRows == [["1"]])
        }
    }

    /// The directory holds the first claim of a row (locate events, from `georep.directory`), in
    /// one batch or several; a pinned row's content does not write it.
    @Test(arguments: StoreKind.allCases)
    func theDirectoryKeepsTheFirstClaimOfARow(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            func claim(_ user: Int64, by region: String, offset: Int64) -> SourcedEvent {
                SourcedEvent(ChangeEvent(origin: region, table: "user_pii", key: ["user_id": .int(user)], op: .locate,
                                         hlc: HLCTimestamp(millis: 100 - UInt64(offset), logical: 0), epoch: 1, columns: ["home_region": .string(region)]),
                             source: SourcePosition(topic: "georep.directory", partition: 0, offset: offset))
            }
            _ = try await store.apply(batch: [claim(5, by: "eu-west-1", offset: 0), claim(5, by: "us-east-1", offset: 1)])
            _ = try await store.apply(batch: [claim(5, by: "ap-southeast-1", offset: 2), claim(6, by: "us-east-1", offset: 3)])
            #expect(try await store.pinnedHome(table: "user_pii", key: ["user_id": 5]) == "eu-west-1", "the first claim wins, though later claims have lower HLCs")
            #expect(try await store.pinnedHome(table: "user_pii", key: ["user_id": 6]) == "us-east-1")
            try await store.recordPinnedHome(table: "user_pii", key: ["user_id": 6], region: "eu-west-1")
            #expect(try await store.pinnedHome(table: "user_pii", key: ["user_id": 6]) == "us-east-1")
            let content = ChangeEvent(origin: "eu-west-1", table: "user_pii", key: ["user_id": 7], op: .upsert,
                                      hlc: HLCTimestamp(millis: 10, logical: 0), epoch: 1, columns: ["home_region": "eu-west-1", "email": "a@b"])
            _ = try await store.apply(batch: [SourcedEvent(content)])
            #expect(try await store.pinnedHome(table: "user_pii", key: ["user_id": 7]) == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func newTablesAndColumnsAreAddedToAnExistingStore(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let first = try await scratch.open()
            _ = try await first.apply(batch: [SourcedEvent(upsert(1, "Ann", at: 10))])
            try await scratch.close(first)
            var config = StoreFixtures.config
            let profile = StoreFixtures.table("user_profile")
            config.tables[0] = TableSchema(name: "user_profile", key: profile.key, merge: profile.merge,
                                           columns: profile.columns + [ColumnSchema(name: "age", type: .integer), ColumnSchema(name: "badges", type: .gset)])
            config.tables.append(TableSchema(name: "notes", key: ["id"], merge: .lwwColumns, columns: [ColumnSchema(name: "id", type: .text), ColumnSchema(name: "body", type: .text)]))
            let store = try await scratch.open(config)
            #expect(try await store.row(table: "user_profile", key: ["user_id": 1]) == ["user_id": 1, "display_name": "Ann", "bio": nil, "age": nil, "badges": []])
            let update = ChangeEvent(origin: "eu-west-1", table: "user_profile", key: ["user_id": 1], op: .upsert,
                                     hlc: HLCTimestamp(millis: 20, logical: 0), epoch: 1, columns: ["display_name": "Ann", "age": 30])
            let note = ChangeEvent(origin: "eu-west-1", table: "notes", key: ["id": "n1"], op: .upsert,
                                   hlc: HLCTimestamp(millis: 21, logical: 0), epoch: 1, columns: ["body": "hello"])
            let outcome = try await store.apply(batch: [SourcedEvent(update), SourcedEvent(note)])
            #expect(outcome.failures.isEmpty)
            #expect(try await store.row(table: "user_profile", key: ["user_id": 1])?["age"] == 30)
            #expect(try await store.row(table: "notes", key: ["id": "n1"])?["body"] == "hello")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func changingAColumnTypeOrMergeRuleIsAClearError(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            try await scratch.close(try await scratch.open())
            var retyped = StoreFixtures.config
            let profile = StoreFixtures.table("user_profile")
            retyped.tables[0] = TableSchema(name: "user_profile", key: profile.key, merge: profile.merge,
                                            columns: profile.columns.map { $0.name == "bio" ? ColumnSchema(name: "bio", type: .json) : $0 })
            await #expect(throws: StoreError.incompatibleSchema(table: "user_profile", problem: "column bio changed type from text to json; only new columns can be added")) {
                try await scratch.open(retyped)
            }
            var remerged = StoreFixtures.config
            remerged.tables[0] = TableSchema(name: "user_profile", key: profile.key, merge: .lwwColumns, columns: profile.columns)
            await #expect(throws: StoreError.incompatibleSchema(table: "user_profile", problem: "merge rule changed from lww to lww-columns; a merge rule cannot change on an existing store")) {
                try await scratch.open(remerged)
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func regionConfigAndReplicationStatusAreStoredAndReplaced(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            try await store.saveRegionConfigs([
                RegionConfigRecord(regionID: "us-east-1", kafka: "k:1", http: "h:1", isPrimary: true, isAcceptingWrites: true, epoch: 1),
                RegionConfigRecord(regionID: "eu-west-1", kafka: "k:2", http: "h:2", isPrimary: false, isAcceptingWrites: true, epoch: 1),
            ])
            try await store.saveRegionConfigs([
                RegionConfigRecord(regionID: "us-east-1", kafka: "k:1", http: "h:1", isPrimary: false, isAcceptingWrites: false, epoch: 2),
            ])
            let regions = try await store.regionConfigs()
            #expect(regions.map(\.regionID) == ["eu-west-1", "us-east-1"])
            #expect(regions.last == RegionConfigRecord(regionID: "us-east-1", kafka: "k:1", http: "h:1", isPrimary: false, isAcceptingWrites: false, epoch: 2))
            let measured = Date(timeIntervalSince1970: 1_750_000_000.25)
            let status = ReplicationStatusRecord(sourceRegion: "us-east-1", targetRegion: "eu-west-1", lastLSN: 41, lagRecords: 3, lagMillis: 120, updatedAt: measured)
            try await store.saveReplicationStatus([status])
            var later = status
            later.lastLSN = 44
            later.lagRecords = 0
            try await store.saveReplicationStatus([later])
            #expect(try await store.replicationStatus() == [later])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func unknownTablesAndMalformedKeysAreRefusedOnReads(_ kind: StoreKind) async throws {
        try await ScratchStore.with(kind) { scratch in
            let store = try await scratch.open()
            await #expect(throws: StoreError.unknownTable("orders")) {
                try await store.row(table: "orders", key: ["id": 1])
            }
            await #expect(throws: EventRejection.keyMismatch(table: "user_profile", problem: "id is not a key column; the key is (user_id)")) {
                try await store.row(table: "user_profile", key: ["id": 1])
            }
        }
    }
}
