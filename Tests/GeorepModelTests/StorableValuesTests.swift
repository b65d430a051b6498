import Foundation
import GeorepModel
import Testing

/// Issue 15: whether an event is applied, and what it stores, is decided by the model the same
/// way for every region and both stores.
@Suite("storable values")
struct StorableValuesTests {
    let codec = ChangeEventCodec(config: Fixtures.config)
    let profile = Fixtures.table("user_profile")
    let cart = Fixtures.table("cart")
    let ledger = Fixtures.table("ledger")

    private func context(_ millis: UInt64, _ origin: String = "us-east-1") -> WriteContext {
        WriteContext(origin: origin, hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1)
    }

    /// A key in the path form of `table`, refused with a problem containing `problem`.
    private func expectKeyRefused(_ table: TableSchema, _ text: String, _ problem: String) {
        do {
            _ = try table.parseKey(text)
            Issue.record("key of \(text.utf8.count) bytes was accepted")
        } catch {
            #expect(error.description.contains(problem), "\(error)")
        }
    }

    @Test("a key with U+0000 is refused: SQLite cut it there and PostgreSQL refused it")
    func keysWithNUL() throws {
        expectKeyRefused(cart, "a\u{0}b", "U+0000")
        expectKeyRefused(ledger, "a\u{0},1", "U+0000")
        #expect(throws: EventRejection.self) { try cart.checkKey(["cart_id": "zz\u{0}evil"]) }
        #expect(try cart.parseKey("a b") == ["cart_id": "a b"])
    }

    @Test("a key longer than 1,024 bytes of UTF-8 is refused; one of 1,024 is kept")
    func longKeys() throws {
        expectKeyRefused(cart, String(repeating: "k", count: 1025), "at most 1024")
        expectKeyRefused(cart, String(repeating: "é", count: 513), "at most 1024")  // 1,026 bytes
        #expect(try cart.parseKey(String(repeating: "k", count: 1024))["cart_id"]?.stringValue?.utf8.count == 1024)
        // A composite key counts its joined text.
        expectKeyRefused(ledger, String(repeating: "r", count: 1020) + ",12345", "at most 1024")
    }

    @Test("a key with a ',' followed by a combining mark splits on the byte ','")
    func keySplitsOnTheCommaByte() throws {
        // Swift takes "," + U+0301 for one Character, which a split on "," would not see.
        do {
            _ = try ledger.parseKey("x,\u{301}7")
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("key column n must be a 64-bit integer"), "\(error)")
        }
    }

    @Test("U+0000 in a text value, a json string, a json member name or a set element is refused the same way by the writer and the codec")
    func valuesWithNUL() throws {
        let row = RowState(table: profile, key: ["user_id": 205])
        #expect(throws: EventRejection.self) { try row.makeUpsert(["display_name": "a\u{0}b"], context: context(1)) }
        let ledgerRow = RowState(table: ledger, key: ["region_code": "a", "n": 1])
        #expect(throws: EventRejection.self) { try ledgerRow.makeUpsert(["meta": ["k": "a\u{0}b"]], context: context(1)) }
        #expect(throws: EventRejection.self) { try ledgerRow.makeUpsert(["meta": ["a\u{0}b": 1]], context: context(1)) }
        #expect(throws: EventRejection.self) { try ledgerRow.makeUpsert(["meta": [["deep": ["x\u{0}"]]]], context: context(1)) }
        let cartRow = RowState(table: cart, key: ["cart_id": "c"])
        #expect(throws: EventRejection.self) { try cartRow.makeAdd(["items": ["a\u{0}"]], context: context(1)) }
        #expect(throws: EventRejection.self) { try cartRow.makeUpsert(["note": "a\u{0}b"], context: context(1)) }
        // From the log: the same events, written by another producer, are refused by every applier.
        let upsert = #"{"v": 1, "origin": "us-east-1", "table": "user_profile", "key": {"user_id": 205}, "op": "upsert", "hlc": "114428378130448384", "epoch": 1, "columns": {"display_name": "a\u0000b"}}"#
        #expect(throws: EventRejection.self) { try codec.decode(Data(upsert.utf8), logTimestampMillis: nil) }
        let key = #"{"v": 1, "origin": "us-east-1", "table": "cart", "key": {"cart_id": "zz\u0000evil"}, "op": "delete", "hlc": "114428378130448384", "epoch": 1}"#
        #expect(throws: EventRejection.self) { try codec.decode(Data(key.utf8), logTimestampMillis: nil) }
    }

    /// A json value nested `depth` arrays deep around a string.
    private func nested(_ depth: Int) -> JSONValue {
        (0..<depth).reduce(JSONValue.string("core")) { inner, _ in .array([inner]) }
    }

    @Test("a json value nested 64 levels is stored and read back through the event and the merge state; 65 is refused at the origin")
    func jsonDepth() throws {
        let row = RowState(table: ledger, key: ["region_code": "a", "n": 1])
        let deepest = nested(StorableValues.maxJSONDepth)
        let event = try row.makeUpsert(["meta": deepest], context: context(1))
        let decoded = try codec.decode(codec.encode(event), logTimestampMillis: nil)
        #expect(decoded == event)
        var applied = RowState(table: ledger, key: decoded.key)
        applied.apply(decoded)
        #expect(try RowMergeState(jsonText: applied.state.jsonText) == applied.state)
        #expect(throws: EventRejection.self) { try row.makeUpsert(["meta": nested(StorableValues.maxJSONDepth + 1)], context: context(1)) }

        // lww-columns wraps a cell one level deeper in the merge state: it must read back too.
        let cells = Fixtures.config.tables.first { $0.merge == .lwwColumns && $0.columns.contains { $0.type == .json } }
        if let cells {
            let column = cells.columns.first { $0.type == .json }!.name
            var cellRow = RowState(table: cells, key: Dictionary(uniqueKeysWithValues: cells.key.map { ($0, JSONValue.string("k")) }))
            cellRow.apply(try cellRow.makeUpsert([column: deepest], context: context(1)))
            #expect(try RowMergeState(jsonText: cellRow.state.jsonText) == cellRow.state)
        }
    }

    @Test("two member names that differ only in Unicode normalization are refused, not merged into one")
    func canonicallyEquivalentMemberNames() throws {
        let precomposed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(precomposed == decomposed, "Swift calls them equal: the reason for the rule")
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(Array(#"{"\#(precomposed)": 1, "\#(decomposed)": 2}"#.utf8)) }
        // Each alone is kept with its own bytes; an exact repeat keeps the last value.
        let alone = try JSONValue.parse(Array(#"{"\#(decomposed)": 1}"#.utf8))
        #expect(alone.objectValue?.keys.first?.utf8.elementsEqual(decomposed.utf8) == true)
        #expect(try JSONValue.parse(Array(#"{"a": 1, "a": 2}"#.utf8)) == ["a": 2])
    }

    @Test("set elements that differ only in Unicode normalization are two elements, in every order of arrival, in the view and the stored state")
    func canonicallyEquivalentElements() throws {
        let precomposed = "caf\u{E9}", decomposed = "cafe\u{301}"
        let atUS = ChangeEvent(origin: "us-east-1", table: "cart", key: ["cart_id": "u1"], op: .add,
                               hlc: HLCTimestamp(millis: 10, logical: 0), epoch: 1, columns: ["items": [.string(precomposed)], "saved": [.string(precomposed)]])
        let atEU = ChangeEvent(origin: "eu-west-1", table: "cart", key: ["cart_id": "u1"], op: .add,
                               hlc: HLCTimestamp(millis: 10, logical: 0), epoch: 1, columns: ["items": [.string(decomposed)], "saved": [.string(decomposed)]])
        var views: [[UInt8]] = []
        var states: [String] = []
        for order in [[atUS, atEU], [atEU, atUS]] {
            var row = RowState(table: cart, key: ["cart_id": "u1"])
            for event in order { row.apply(try cart.validate(event)) }
            let items = try #require(row.view?["items"]?.arrayValue)
            #expect(items.count == 2)
            #expect(row.view?["saved"]?.arrayValue?.count == 2)
            views.append(JSONValue.object(row.view ?? [:]).jsonBytes)
            states.append(row.state.jsonText)
            let restored = try RowMergeState(jsonText: row.state.jsonText)
            #expect(RowState(table: cart, key: ["cart_id": "u1"], state: restored).view?["saved"]?.arrayValue?.count == 2)
        }
        #expect(views[0] == views[1])
        #expect(Array(states[0].utf8) == Array(states[1].utf8))

        // A remove of one form leaves the other.
        var row = RowState(table: cart, key: ["cart_id": "u1"])
        row.apply(try cart.validate(atUS))
        row.apply(try cart.validate(atEU))
        let remove = try row.makeRemove(["saved": [.string(decomposed)]], context: context(20))
        row.apply(remove)
        let savedValues = row.view?["saved"]?.arrayValue ?? []
        let saved = savedValues.compactMap(\.stringValue)
        #expect(saved.count == 1 && saved[0].utf8.elementsEqual(precomposed.utf8))
        // One remove naming both forms cannot say which tags it saw of each: refused.
        #expect(throws: EventRejection.self) { try row.makeRemove(["saved": [.string(decomposed), .string(precomposed)]], context: context(21)) }
    }

    @Test("a merge state written before elements were compared by bytes still reads")
    func legacySetState() throws {
        let legacy = #"{"gsets":{"items":{"a":"1@us-east-1"}},"orsets":{"saved":{"b":{"a":["2@us-east-1"]}}},"written":"2@us-east-1"}"#
        let state = try RowMergeState(jsonText: legacy)
        let view = RowState(table: cart, key: ["cart_id": "c"], state: state).view
        #expect(view?["items"] == ["a"])
        #expect(view?["saved"] == ["b"])
    }

    @Test("two writes with one stamp and different values keep the same value in either order")
    func equalStampsDecideByBytes() {
        let first = ChangeEvent(origin: "us-east-1", table: "user_profile", key: ["user_id": 1], op: .upsert,
                                hlc: HLCTimestamp(millis: 10, logical: 0), epoch: 1, columns: ["display_name": "a", "bio": nil])
        var second = first
        second.columns["display_name"] = "b"
        var ab = RowState(table: profile, key: ["user_id": 1])
        ab.apply(first)
        ab.apply(second)
        var ba = RowState(table: profile, key: ["user_id": 1])
        ba.apply(second)
        ba.apply(first)
        #expect(ab.view == ba.view)
        #expect(ab.view?["display_name"] == "b")
    }

    @Test("a locate naming a region not in the configuration, and a pinned row naming another home than its writer, are refused")
    func routingData() throws {
        let codec = ChangeEventCodec(config: Fixtures.specConfig)
        let mars = #"{"v": 1, "origin": "eu-west-1", "table": "user_pii", "key": {"user_id": 7}, "op": "locate", "hlc": "114428378130448384", "epoch": 1, "columns": {"home_region": "mars"}}"#
        #expect(throws: EventRejection.self) { try codec.decode(Data(mars.utf8), logTimestampMillis: nil) }
        let elsewhere = #"{"v": 1, "origin": "eu-west-1", "table": "user_pii", "key": {"user_id": 7}, "op": "upsert", "hlc": "114428378130448384", "epoch": 1, "columns": {"home_region": "us-east-1", "email": "x"}}"#
        #expect(throws: EventRejection.self) { try codec.decode(Data(elsewhere.utf8), logTimestampMillis: nil) }
        let home = elsewhere.replacingOccurrences(of: #""home_region": "us-east-1""#, with: #""home_region": "eu-west-1""#)
        #expect(try codec.decode(Data(home.utf8), logTimestampMillis: nil).op == .upsert)
    }
}

/// Issue 15 D: one rule for counters at the 64-bit bound, the same in every region.
@Suite("counters at the bound")
struct CounterBoundTests {
    let cart = Fixtures.table("cart")
    let key: [String: JSONValue] = ["cart_id": "c"]

    private func increment(_ row: RowState, _ delta: Int64, at millis: UInt64, _ origin: String) throws(EventRejection) -> ChangeEvent {
        try row.makeIncrement(["views": delta], context: WriteContext(origin: origin, hlc: HLCTimestamp(millis: millis, logical: 0), epoch: 1))
    }

    @Test("concurrent increments past Int64.max read the bound in every region, not a wrapped value; a decrement is taken, a further increment refused")
    func concurrentIncrementsSaturate() throws {
        let empty = RowState(table: cart, key: key)
        let us = try increment(empty, .max, at: 1, "us-east-1")
        let eu = try increment(empty, .max, at: 1, "eu-west-1")
        var row = empty
        row.apply(us)
        row.apply(eu)
        var other = empty
        other.apply(eu)
        other.apply(us)
        #expect(row.view?["views"] == .int(.max))
        #expect(other.view?["views"] == .int(.max))
        #expect(throws: EventRejection.self) { try increment(row, 1, at: 2, "us-east-1") }
        let down = try increment(row, -1, at: 2, "us-east-1")
        row.apply(down)
        #expect(row.view?["views"] == .int(.max), "the exact sum is 2^64 - 3: still past the bound")
        let wayDown = try increment(row, .min + 1, at: 3, "ap-southeast-1")
        row.apply(wayDown)
        #expect(row.view?["views"] == .int(Int64.max - 1))
    }

    @Test("+max then -max leaves 0, and +1 and -1 are then taken (in a fresh slot), also after a delete")
    func exhaustedSlotsNeverBlockACounter() throws {
        var row = RowState(table: cart, key: key)
        row.apply(try increment(row, .max, at: 1, "us-east-1"))
        row.apply(try increment(row, -.max, at: 2, "us-east-1"))
        #expect(row.view?["views"] == 0)
        let plus = try increment(row, 1, at: 3, "us-east-1")
        #expect(plus.counterSlot != "us-east-1")
        row.apply(plus)
        #expect(row.view?["views"] == 1)
        row.apply(try increment(row, -1, at: 4, "us-east-1"))
        row.apply(try increment(row, -1, at: 5, "us-east-1"))
        #expect(row.view?["views"] == -1)
        row.apply(row.makeDelete(context: WriteContext(origin: "us-east-1", hlc: HLCTimestamp(millis: 6, logical: 0), epoch: 1)))
        row.apply(try increment(row, 1, at: 7, "us-east-1"))
        #expect(row.view?["views"] == 1)
        // The fresh slot's events decode like any other.
        let codec = ChangeEventCodec(config: Fixtures.config)
        #expect(try codec.decode(codec.encode(plus), logTimestampMillis: nil) == plus)
    }

    @Test("an increment of -2^63 is refused: a slot's totals cannot hold its magnitude")
    func minimumDeltaRefused() {
        #expect(throws: EventRejection.self) { try increment(RowState(table: cart, key: key), .min, at: 1, "us-east-1") }
    }
}
