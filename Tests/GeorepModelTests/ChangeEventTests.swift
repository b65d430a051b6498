import Foundation
import GeorepModel
import Testing

@Suite struct ChangeEventTests {
    let codec = ChangeEventCodec(config: Fixtures.config)
    /// The wall clock of the examples' HLCs (2025-04-30).
    let exampleWall: UInt64 = 1_746_038_484_656

    private func decode(_ json: String, wall: UInt64? = nil) throws(EventRejection) -> ChangeEvent {
        try codec.decode(Data(json.utf8), logTimestampMillis: wall.map { Int64($0) })
    }

    /// A valid upsert of user 42 with `replacement` spliced over `"columns": {...}`.
    private func upsert(_ body: String = #""columns": {"display_name": "Ann"}"#) -> String {
        #"{"v": 1, "origin": "us-east-1", "table": "user_profile", "key": {"user_id": 42}, "op": "upsert", "hlc": "114428378130448384", "epoch": 1, "# + body + "}"
    }

    @Test(arguments: ["upsert", "delete", "set-add", "set-remove", "counter-increment", "locate"])
    func everyExampleFileDecodesAgainstTheSpecTables(name: String) throws {
        let url = Fixtures.examplesDirectory.appendingPathComponent("\(name).json")
        let data = try Data(contentsOf: url)
        let event = try ChangeEventCodec(config: Fixtures.specConfig).decode(data, logTimestampMillis: Int64(exampleWall))
        let expectedOp: ChangeEvent.Operation = switch name {
        case "set-add": .add
        case "set-remove": .remove
        case "counter-increment": .increment
        default: ChangeEvent.Operation(rawValue: name) ?? .upsert
        }
        #expect(event.op == expectedOp)
        #expect(event.hlc.millis == exampleWall || event.hlc.millis == exampleWall + 1 || event.hlc.millis == exampleWall + 2)
        // What we encode decodes to the same event.
        #expect(try codec.decode(codec.encode(event), logTimestampMillis: nil) == event)
    }

    @Test func theJSONSchemaAgreesWithTheDecoder() throws {
        let data = try Data(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("schemas/change-event.schema.json"))
        let schema = try #require(JSONValue(parsing: Array(data))?.objectValue)
        #expect(schema["$schema"] == "https://json-schema.org/draft/2020-12/schema")
        #expect(schema["additionalProperties"] == false)
        let properties = try #require(schema["properties"]?.objectValue)
        #expect(Set(properties.keys) == ChangeEvent.fieldNames)
        let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
        #expect(required == ["v", "origin", "table", "key", "op", "hlc", "epoch"])
        #expect(properties["op"]?.objectValue?["enum"] == .array(ChangeEvent.Operation.allCases.map { .string($0.rawValue) }))
        #expect(properties["v"]?.objectValue?["const"] == .int(Int64(ChangeEvent.formatVersion)))
        // Every required member is required by the decoder too.
        let example = try JSONValue(parsing: Array(Data(contentsOf: Fixtures.examplesDirectory.appendingPathComponent("upsert.json"))))?.objectValue ?? [:]
        for member in required {
            var incomplete = example
            incomplete[member] = nil
            #expect(throws: EventRejection.self, "without \(member)") {
                try codec.decode(Array(JSONValue.object(incomplete).jsonText.utf8), logTimestampMillis: nil)
            }
        }
    }

    @Test func decodesEveryField() throws {
        let remove = try decode(#"{"v":1,"origin":"ap-southeast-1","table":"cart","key":{"cart_id":"c1"},"op":"remove","hlc":"99","epoch":3,"columns":{"saved":["a",7,true]},"observed":{"saved":{"a":["5@us-east-1"],"7":[]}},"writer":"ap-node-2"}"#)
        #expect(remove.origin == "ap-southeast-1")
        #expect(remove.key == ["cart_id": "c1"])
        #expect(remove.hlc == HLCTimestamp(rawValue: 99))
        #expect(remove.epoch == 3)
        #expect(remove.columns["saved"] == ["a", "7", "true"], "elements are canonicalized to strings")
        #expect(remove.observed["saved"]?["a"] == [Stamp(hlc: HLCTimestamp(rawValue: 5), origin: "us-east-1")])
        #expect(remove.observed["saved"]?["7"] == [])
        #expect(remove.writer == "ap-node-2")
        #expect(remove.counterSlot == "ap-node-2")

        let delete = try decode(#"{"v":1,"origin":"eu-west-1","table":"cart","key":{"cart_id":"c1"},"op":"delete","hlc":"100","epoch":0,"counters":{"views":{"us-east-1":{"p":3,"n":1}}}}"#)
        #expect(delete.counterBaselines == ["views": ["us-east-1": CounterTotals(p: 3, n: 1)]])
        #expect(delete.columns.isEmpty)

        let increment = try decode(#"{"v":1,"origin":"eu-west-1","table":"cart","key":{"cart_id":"c1"},"op":"increment","hlc":"101","epoch":0,"columns":{"views":-2},"counters":{"views":{"p":0,"n":2}}}"#)
        #expect(increment.columns["views"] == -2)
        #expect(increment.counterTotals == ["views": CounterTotals(p: 0, n: 2)])

        let real = try decode(#"{"v":1,"origin":"eu-west-1","table":"ledger","key":{"region_code":"x","n":1},"op":"upsert","hlc":"1","epoch":0,"columns":{"weight":3,"meta":{"a":[1,null]},"flag":false}}"#)
        #expect(real.columns["weight"] == .double(3), "an integer for a real column becomes a double")
        #expect(real.columns["meta"] == ["a": [1, nil]])
    }

    @Test func encodesHLCAsADecimalString() throws {
        let event = ChangeEvent(origin: "us-east-1", table: "user_profile", key: ["user_id": 1], op: .upsert,
                                hlc: HLCTimestamp(rawValue: .max), epoch: 2, columns: ["bio": nil])
        let object = try #require(try JSONSerialization.jsonObject(with: event.encodedJSON()) as? [String: Any])
        #expect(object["hlc"] as? String == "18446744073709551615")
        #expect(object["v"] as? Int == 1)
        #expect(object["observed"] == nil)
        #expect(try ChangeEventCodec.decodeUnvalidated(event.encodedJSON()) == event)
    }

    @Test func rejectsWhatIsNotJSON() {
        #expect(throws: EventRejection.self) { try decode("not json") }
        do { _ = try decode("{\"v\":1,") } catch { #expect(error.code == "not-json") }
        #expect(throws: EventRejection.schemaViolation(field: "(event)", problem: "an event must be a JSON object")) { try decode("[1,2]") }
    }

    @Test func rejectsSchemaViolationsNamingTheField() {
        #expect(throws: EventRejection.schemaViolation(field: "origin", problem: "missing required field")) {
            try decode(#"{"v":1,"table":"user_profile","key":{"user_id":1},"op":"upsert","hlc":"1","epoch":0}"#)
        }
        #expect(throws: EventRejection.schemaViolation(field: "color", problem: "unknown field")) {
            try decode(upsert(#""color": "red""#))
        }
        #expect(throws: EventRejection.schemaViolation(field: "epoch", problem: "must be a non-negative integer")) {
            try decode(upsert().replacingOccurrences(of: #""epoch": 1"#, with: #""epoch": -1"#))
        }
        #expect(throws: EventRejection.schemaViolation(field: "hlc", problem: "must be a string")) {
            try decode(upsert().replacingOccurrences(of: #""hlc": "114428378130448384""#, with: #""hlc": 114428378130448384"#))
        }
        #expect(throws: EventRejection.schemaViolation(field: "hlc", problem: "must be a decimal string of an unsigned 64-bit integer")) {
            try decode(upsert().replacingOccurrences(of: #""hlc": "114428378130448384""#, with: #""hlc": "0x10""#))
        }
        #expect(throws: EventRejection.schemaViolation(field: "op", problem: "must be one of upsert, delete, add, remove, increment")) {
            try decode(upsert().replacingOccurrences(of: #""op": "upsert""#, with: #""op": "merge""#))
        }
        #expect(throws: EventRejection.schemaViolation(field: "key", problem: "must be an object")) {
            try decode(upsert().replacingOccurrences(of: #"{"user_id": 42}"#, with: "42"))
        }
        #expect(throws: EventRejection.schemaViolation(field: "counters", problem: "only increment and delete events carry counters")) {
            try decode(upsert(#""counters": {}"#))
        }
        #expect(throws: EventRejection.schemaViolation(field: "counters.views.n", problem: "missing required field")) {
            try decode(#"{"v":1,"origin":"a","table":"cart","key":{"cart_id":"c"},"op":"increment","hlc":"1","epoch":0,"columns":{"views":1},"counters":{"views":{"p":1}}}"#)
        }
        #expect(throws: EventRejection.schemaViolation(field: "observed.saved", problem: "a tag must be \"<hlc>@<origin>\"")) {
            try decode(#"{"v":1,"origin":"a","table":"cart","key":{"cart_id":"c"},"op":"remove","hlc":"1","epoch":0,"columns":{"saved":["x"]},"observed":{"saved":{"x":["nope"]}}}"#)
        }
    }

    @Test func rejectsANewerVersionBeforeLookingAtOtherFields() {
        #expect(throws: EventRejection.unsupportedVersion(2)) {
            try decode(#"{"v": 2, "whatever": true}"#)
        }
    }

    @Test func rejectsEventsThatDoNotFitTheirTable() {
        #expect(throws: EventRejection.unknownTable("orders")) {
            try decode(upsert().replacingOccurrences(of: "user_profile", with: "orders"))
        }
        #expect(throws: EventRejection.unknownColumn(table: "user_profile", column: "age")) {
            try decode(upsert(#""columns": {"age": 3}"#))
        }
        #expect(throws: EventRejection.wrongColumnType(table: "user_profile", column: "bio", problem: "a text column cannot hold a JSON integer")) {
            try decode(upsert(#""columns": {"bio": 3}"#))
        }
        #expect(throws: EventRejection.wrongColumnType(table: "user_profile", column: "user_id", problem: "is a key column; give its value in key, not in columns")) {
            try decode(upsert(#""columns": {"user_id": 3}"#))
        }
        let cart = #"{"v":1,"origin":"a","table":"cart","key":{"cart_id":"c"},"hlc":"1","epoch":0,"#
        #expect(throws: EventRejection.wrongColumnType(table: "cart", column: "note", problem: "increment needs a counter column, not text")) {
            try decode(cart + #""op":"increment","columns":{"note":1}}"#)
        }
        #expect(throws: EventRejection.wrongColumnType(table: "cart", column: "views", problem: "add needs a gset or orset column, not counter")) {
            try decode(cart + #""op":"add","columns":{"views":["x"]}}"#)
        }
        #expect(throws: EventRejection.wrongColumnType(table: "cart", column: "items", problem: "a gset column cannot be upserted; use add or remove")) {
            try decode(cart + #""op":"upsert","columns":{"items":["x"]}}"#)
        }
        #expect(throws: EventRejection.wrongColumnType(table: "cart", column: "items", problem: "elements cannot be removed from a gset (grow-only) column")) {
            try decode(cart + #""op":"remove","columns":{"items":["x"]}}"#)
        }
        #expect(throws: EventRejection.wrongColumnType(table: "cart", column: "views", problem: "an increment delta must be an integer, not a JSON number")) {
            try decode(cart + #""op":"increment","columns":{"views":1.5}}"#)
        }
        #expect(throws: EventRejection.wrongColumnType(table: "cart", column: "saved", problem: "a set element must be a string, number or boolean, not a JSON null")) {
            try decode(cart + #""op":"add","columns":{"saved":[null]}}"#)
        }
        #expect(throws: EventRejection.schemaViolation(field: "columns.note", problem: "a delete carries no columns")) {
            try decode(cart + #""op":"delete","columns":{"note":"x"}}"#)
        }
    }

    @Test func rejectsKeysThatDoNotMatchTheKeyColumns() {
        #expect(throws: EventRejection.keyMismatch(table: "user_profile", problem: "key column user_id must be a non-empty integer, not a JSON string")) {
            try decode(upsert().replacingOccurrences(of: #"{"user_id": 42}"#, with: #"{"user_id": "42"}"#))
        }
        #expect(throws: EventRejection.keyMismatch(table: "user_profile", problem: "missing key column user_id")) {
            try decode(upsert().replacingOccurrences(of: #"{"user_id": 42}"#, with: "{}"))
        }
        #expect(throws: EventRejection.keyMismatch(table: "user_profile", problem: "id is not a key column; the key is (user_id)")) {
            try decode(upsert().replacingOccurrences(of: #"{"user_id": 42}"#, with: #"{"user_id": 42, "id": 1}"#))
        }
    }

    @Test func rejectsAnHLCTooFarAheadOfTheWallClock() throws {
        let oneHourBefore = exampleWall - 3_600_000
        #expect(throws: EventRejection.clockSkew(hlc: HLCTimestamp(rawValue: 114428378130448384), aheadMillis: 3_600_000, maxOffsetMillis: 60_000)) {
            try decode(upsert(), wall: oneHourBefore)
        }
        _ = try decode(upsert(), wall: exampleWall - 59_000)
        _ = try decode(upsert(), wall: nil)
    }

    @Test func rejectionMessagesNameTheProblem() {
        #expect(EventRejection.unknownColumn(table: "cart", column: "x").description == "table cart has no column x")
        #expect(EventRejection.unsupportedVersion(3).description.contains("version 3"))
        #expect(EventRejection.schemaViolation(field: "hlc", problem: "must be a string").description == "schema violation at hlc: must be a string")
    }
}

@Suite struct RowKeyTests {
    @Test func kafkaKeyJoinsKeyValuesInKeyOrder() {
        let ledger = Fixtures.table("ledger")
        #expect(ledger.kafkaKey(for: ["n": 7, "region_code": "a"]) == "ledger/a,7")
        #expect(Fixtures.table("user_profile").kafkaKey(for: ["user_id": 42]) == "user_profile/42")
    }

    @Test func parsesPathKeysAgainstKeyTypes() throws {
        #expect(try Fixtures.table("user_profile").parseKey("42") == ["user_id": 42])
        #expect(try Fixtures.table("ledger").parseKey("a,7") == ["region_code": "a", "n": 7])
        #expect(try Fixtures.table("cart").parseKey("c,1") == ["cart_id": "c,1"], "a single text key keeps its commas")
        #expect(throws: EventRejection.keyMismatch(table: "user_profile", problem: "key column user_id must be a 64-bit integer, not 'abc'")) {
            try Fixtures.table("user_profile").parseKey("abc")
        }
        #expect(throws: EventRejection.keyMismatch(table: "user_profile", problem: "key column user_id must be a 64-bit integer, not '9223372036854775808'")) {
            try Fixtures.table("user_profile").parseKey("9223372036854775808")
        }
        #expect(throws: EventRejection.keyMismatch(table: "ledger", problem: "key column region_code must not contain ',' (only the last key column may)")) {
            try Fixtures.table("ledger").checkKey(["region_code": "a,b", "n": 1])
        }
        #expect(throws: Never.self) { try Fixtures.table("cart").checkKey(["cart_id": "c,1"]) }
        #expect(throws: EventRejection.keyMismatch(table: "ledger", problem: "expected 2 values (region_code, n) separated by ',' but got 1")) {
            try Fixtures.table("ledger").parseKey("a")
        }
        #expect(throws: EventRejection.keyMismatch(table: "ledger", problem: "key column n must be a 64-bit integer, not 'b,c'")) {
            try Fixtures.table("ledger").parseKey("a,b,c")
        }
    }
}

@Suite("locate events")
struct LocateEventTests {
    private let codec = ChangeEventCodec(config: Fixtures.specConfig)

    private func locate(table: String = "user_pii", columns: String) -> Data {
        Data(#"{"v": 1, "origin": "eu-west-1", "table": "\#(table)", "key": {"user_id": 7}, "op": "locate", "hlc": "114428378130448384", "epoch": 1, "columns": \#(columns)}"#.utf8)
    }

    @Test func aLocateNamesOnlyTheHomeRegionOfAPinnedRow() throws {
        #expect(try codec.decode(locate(columns: #"{"home_region": "eu-west-1"}"#), logTimestampMillis: nil).op == .locate)
        #expect(throws: EventRejection.self) { try codec.decode(locate(columns: #"{"home_region": "eu-west-1", "email": "a@b"}"#), logTimestampMillis: nil) }
        #expect(throws: EventRejection.self) { try codec.decode(locate(columns: #"{}"#), logTimestampMillis: nil) }
        #expect(throws: EventRejection.self) { try codec.decode(locate(columns: #"{"home_region": 5}"#), logTimestampMillis: nil) }
        #expect(throws: EventRejection.self) {
            try codec.decode(Data(#"{"v": 1, "origin": "eu-west-1", "table": "user_profile", "key": {"user_id": 7}, "op": "locate", "hlc": "114428378130448384", "epoch": 1, "columns": {"home_region": "eu-west-1"}}"#.utf8), logTimestampMillis: nil)
        }
    }
}
