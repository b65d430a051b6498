import GeorepModel
import Testing

@Suite struct RowStateTests {
    let profile = Fixtures.table("user_profile")
    let cart = Fixtures.table("cart")
    let key42: [String: JSONValue] = ["user_id": 42]
    let cartKey: [String: JSONValue] = ["cart_id": "c1"]

    private func event(
        _ table: TableSchema, _ op: ChangeEvent.Operation, at millis: UInt64, from origin: String = "us-east-1",
        key: [String: JSONValue]? = nil, _ columns: [String: JSONValue] = [:]
    ) -> ChangeEvent {
        ChangeEvent(origin: origin, table: table.name, key: key ?? (table.name == "cart" ? cartKey : key42), op: op,
                    hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1, columns: columns)
    }

    private func context(_ millis: UInt64, _ origin: String = "us-east-1") -> WriteContext {
        WriteContext(origin: origin, hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1)
    }

    @Test func lwwRowIsOneRegisterAndAbsentColumnsBecomeNull() {
        var row = RowState(table: profile, key: key42)
        row.apply(event(profile, .upsert, at: 10, ["display_name": "Ann", "bio": "hi"]))
        row.apply(event(profile, .upsert, at: 20, ["display_name": "Bo"]))
        #expect(row.view == ["user_id": 42, "display_name": "Bo", "bio": nil])
        let stale = row.apply(event(profile, .upsert, at: 15, ["bio": "old"]))
        #expect(!stale.isChanged)
        #expect(row.view?["display_name"] == "Bo")
    }

    @Test("a delete forgets the values it hides: none stays in the stored merge state, and writes older than it stay hidden")
    func deleteForgetsHiddenValues() throws {
        let pii = Fixtures.table("user_pii")
        var row = RowState(table: pii, key: key42)
        row.apply(event(pii, .upsert, at: 10, ["home_region": "us-east-1", "email": "ann@example.com"]))
        row.apply(event(pii, .delete, at: 20))
        #expect(row.view == nil)
        #expect(!row.state.jsonText.contains("ann@example.com"))
        // A write older than the delete arrives late: still hidden, still not kept.
        row.apply(event(pii, .upsert, at: 15, ["home_region": "us-east-1", "email": "old@example.com"]))
        #expect(row.view == nil)
        #expect(!row.state.jsonText.contains("old@example.com"))
        row.apply(event(pii, .upsert, at: 30, ["home_region": "us-east-1", "email": "new@example.com"]))
        #expect(row.view?["email"] == "new@example.com")

        // Per-column registers and set elements too.
        var cartRow = RowState(table: cart, key: cartKey)
        cartRow.apply(event(cart, .upsert, at: 10, ["note": "secret note"]))
        cartRow.apply(event(cart, .add, at: 11, ["items": ["secret-item"], "saved": ["secret-saved"]]))
        cartRow.apply(event(cart, .delete, at: 20))
        cartRow.apply(event(cart, .add, at: 12, from: "eu-west-1", ["saved": ["late-saved"]]))
        let text = cartRow.state.jsonText
        for value in ["secret note", "secret-item", "secret-saved", "late-saved"] { #expect(!text.contains(value), "\(value) kept") }
        cartRow.apply(event(cart, .add, at: 30, ["saved": ["after"]]))
        #expect(cartRow.view?["saved"] == ["after"])
        #expect(cartRow.view?["items"] == [])
    }

    @Test func lwwColumnsMergeEachColumnAlone() {
        var row = RowState(table: cart, key: cartKey)
        row.apply(event(cart, .upsert, at: 20, from: "eu-west-1", ["note": "eu"]))
        row.apply(event(cart, .upsert, at: 10, ["note": "us"]))
        #expect(row.view?["note"] == "eu")
    }

    @Test func concurrentWritesFromTwoRegionsAreConflictsInEitherOrder() throws {
        let us = event(profile, .upsert, at: 1000, ["display_name": "us"])
        let eu = event(profile, .upsert, at: 1500, from: "eu-west-1", ["display_name": "eu"])
        for order in [[us, eu], [eu, us]] {
            var row = RowState(table: profile, key: key42)
            #expect(row.apply(order[0], conflictWindowMillis: 1000).conflicts.isEmpty)
            let conflicts = row.apply(order[1], conflictWindowMillis: 1000).conflicts
            let conflict = try #require(conflicts.first)
            #expect(conflicts.count == 1)
            #expect(conflict.column == nil)
            #expect(conflict.winner.stamp == eu.stamp)
            #expect(conflict.winner.value.objectValue?["display_name"] == "eu")
            #expect(conflict.loser.stamp == us.stamp)
            #expect(row.view?["display_name"] == "eu")
        }
        // Outside the window, or from the same region, it is not a conflict.
        var row = RowState(table: profile, key: key42)
        row.apply(us)
        #expect(row.apply(eu, conflictWindowMillis: 100).conflicts.isEmpty)
        #expect(row.apply(event(profile, .upsert, at: 1600, from: "eu-west-1"), conflictWindowMillis: 1000).conflicts.isEmpty)
    }

    @Test func columnConflictsNameTheColumn() {
        var row = RowState(table: cart, key: cartKey)
        row.apply(event(cart, .upsert, at: 100, ["note": "us"]))
        let conflicts = row.apply(event(cart, .upsert, at: 100, from: "eu-west-1", ["note": "eu"])).conflicts
        #expect(conflicts.map(\.column) == ["note"])
        #expect(conflicts.first?.winner.value == "us", "same HLC: the higher origin id (us-east-1 > eu-west-1) wins")
    }

    @Test func deleteIsATombstoneAndOnlyALaterWriteResurrects() {
        var row = RowState(table: profile, key: key42)
        row.apply(event(profile, .upsert, at: 10, ["display_name": "Ann"]))
        row.apply(event(profile, .delete, at: 20))
        #expect(row.view == nil)
        row.apply(event(profile, .upsert, at: 15, ["display_name": "late"]))
        #expect(row.view == nil, "an earlier write does not resurrect")
        row.apply(event(profile, .upsert, at: 30, ["bio": "back"]))
        #expect(row.view == ["user_id": 42, "display_name": nil, "bio": "back"])
    }

    @Test func tombstoneHidesOlderSetAddsAndScalarsAndAppliesCounterBaselines() throws {
        var row = RowState(table: cart, key: cartKey)
        row.apply(event(cart, .upsert, at: 5, ["note": "n"]))
        row.apply(event(cart, .add, at: 10, ["items": ["a"], "saved": ["x"]]))
        row.apply(try row.makeIncrement(["views": 5], context: context(11)))
        row.apply(row.makeDelete(context: context(20)))
        #expect(row.view == nil)
        row.apply(event(cart, .add, at: 30, ["items": ["b"]]))
        #expect(row.view == ["cart_id": "c1", "items": ["b"], "saved": [], "views": 0, "note": nil])
        row.apply(try row.makeIncrement(["views": 2], context: context(31)))
        #expect(row.view?["views"] == 2)
    }

    @Test func concurrentIncrementSurvivesADelete() throws {
        var row = RowState(table: cart, key: cartKey)
        let first = try row.makeIncrement(["views": 3], context: context(10))
        row.apply(first)
        // eu increments concurrently, without having seen the delete; us deletes without having seen eu's increment.
        let euIncrement = try RowState(table: cart, key: cartKey).makeIncrement(["views": 4], context: context(12, "eu-west-1"))
        row.apply(row.makeDelete(context: context(13)))
        row.apply(euIncrement)
        #expect(row.view == nil, "a write stamped before the delete does not resurrect the row")
        row.apply(event(cart, .add, at: 30, ["items": ["a"]]))
        #expect(row.view?["views"] == 4, "the increment the delete did not observe survives it")
    }

    @Test func orSetRemoveCancelsOnlyObservedAdds() throws {
        var us = RowState(table: cart, key: cartKey)
        us.apply(event(cart, .add, at: 10, ["saved": ["x"]]))
        let remove = try us.makeRemove(["saved": ["x"]], context: context(20))
        #expect(remove.observed == ["saved": ["x": [Fixtures.stamp(10)]]])
        // A concurrent add of x in eu, not observed by the remove, survives (add wins).
        let euAdd = event(cart, .add, at: 15, from: "eu-west-1", ["saved": ["x"]])
        us.apply(remove)
        #expect(us.view?["saved"] == [])
        us.apply(euAdd)
        #expect(us.view?["saved"] == ["x"])
    }

    @Test func tagLessRemoveCancelsEveryLowerStampedAdd() {
        var row = RowState(table: cart, key: cartKey)
        row.apply(event(cart, .add, at: 10, ["saved": ["x", "y"]]))
        row.apply(event(cart, .add, at: 12, from: "eu-west-1", ["saved": ["x"]]))
        row.apply(event(cart, .remove, at: 20, ["saved": ["x"]]))
        #expect(row.view?["saved"] == ["y"])
        row.apply(event(cart, .add, at: 25, ["saved": ["x"]]))
        #expect(row.view?["saved"] == ["x", "y"])
        row.apply(event(cart, .add, at: 18, from: "ap-southeast-1", ["saved": ["z"]]))
        #expect(row.view?["saved"] == ["x", "y", "z"])
    }

    @Test func incrementsAreIdempotentWithRunningTotalsAndWithoutThem() throws {
        var row = RowState(table: cart, key: cartKey)
        let plus = try row.makeIncrement(["views": 5], context: context(10))
        #expect(plus.counterTotals == ["views": CounterTotals(p: 5, n: 0)])
        row.apply(plus)
        let minus = try row.makeIncrement(["views": -2], context: context(11))
        #expect(minus.counterTotals == ["views": CounterTotals(p: 5, n: 2)])
        row.apply(minus)
        row.apply(plus)
        row.apply(minus)
        #expect(row.view?["views"] == 3)
        let handWritten = event(cart, .increment, at: 12, from: "eu-west-1", ["views": 10])
        row.apply(handWritten)
        row.apply(handWritten)
        #expect(row.view?["views"] == 13)
        #expect(row.state.counters["views"]?.slots["eu-west-1@\(handWritten.hlc)"] == CounterTotals(p: 10, n: 0))
    }

    @Test func makeUpsertCarriesTheWholeScalarRowUnderLWW() throws {
        var row = RowState(table: profile, key: key42)
        row.apply(try row.makeUpsert(["display_name": "Ann", "bio": "hi"], context: context(10)))
        let next = try row.makeUpsert(["bio": "new"], context: context(20))
        #expect(next.columns == ["display_name": "Ann", "bio": "new"])
        let columnWise = try RowState(table: cart, key: cartKey).makeUpsert(["note": "x"], context: context(20))
        #expect(columnWise.columns == ["note": "x"])
        #expect(throws: EventRejection.unknownColumn(table: "user_profile", column: "age")) {
            try row.makeUpsert(["age": 3], context: context(30))
        }
    }

    @Test func makeDeleteCarriesEveryCounterSlotAsBaseline() throws {
        var row = RowState(table: cart, key: cartKey)
        row.apply(try row.makeIncrement(["views": 4], context: context(10)))
        row.apply(try row.makeIncrement(["views": -1], context: WriteContext(origin: "eu-west-1", hlc: HLCTimestamp(millis: 11, logical: 0), epoch: 1)))
        let delete = row.makeDelete(context: context(20))
        #expect(delete.counterBaselines == ["views": ["us-east-1": CounterTotals(p: 4), "eu-west-1": CounterTotals(n: 1)]])
    }

    @Test func viewShowsSortedSetsAndIntegerCounters() throws {
        var row = RowState(table: cart, key: cartKey)
        row.apply(try row.makeAdd(["items": ["b", 7, "a", true]], context: context(10)))
        #expect(row.view == ["cart_id": "c1", "items": ["7", "a", "b", "true"], "saved": [], "views": 0, "note": nil])
        #expect(RowState(table: cart, key: cartKey).view == nil)
    }

    @Test func removeAloneDoesNotCreateARow() {
        var row = RowState(table: cart, key: cartKey)
        row.apply(event(cart, .remove, at: 10, ["saved": ["x"]]))
        #expect(row.view == nil)
    }
}
