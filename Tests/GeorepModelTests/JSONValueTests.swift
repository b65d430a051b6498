import GeorepModel
import PropertyBased
import Testing

@Suite struct JSONValueTests {
    @Test func parsesEveryJSONType() {
        let text = #" {"a": [1, -2, 3.5, 1e3, -0, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "o": {}} "#
        let value = JSONValue(parsing: Array(text.utf8))
        #expect(value == ["a": [1, -2, 3.5, 1000.0, 0, true, false, nil], "s": "x\"\\/\u{8}\u{c}\n\r\té😀", "o": [:]])
    }

    @Test func keepsIntegersApartFromReals() {
        #expect(JSONValue(parsing: Array("9223372036854775807".utf8)) == .int(.max))
        #expect(JSONValue(parsing: Array("9223372036854775808".utf8)) == .double(9223372036854775808))
        #expect(JSONValue(parsing: Array("2.0".utf8)) == .double(2))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"\\x\"", "\"a", "[1] 2", "\"\\ud800\"", "1e999", "{\"a\":1,}"])
    func refusesMalformedText(text: String) {
        #expect(JSONValue(parsing: Array(text.utf8)) == nil)
    }

    @Test func keepsUnescapedNonASCIIText() {
        #expect(JSONValue(parsing: Array(#"{"café": "naïve 😀", "ascii": "plain"}"#.utf8)) == ["café": "naïve 😀", "ascii": "plain"])
    }

    @Test func refusesInvalidUTF8AndRawControlCharacters() {
        #expect(JSONValue(parsing: [0x22, 0xFF, 0x22]) == nil)
        #expect(JSONValue(parsing: [0x22, 0x0A, 0x22]) == nil)
    }

    @Test func refusesExcessiveNesting() {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(JSONValue(parsing: Array(deep.utf8)) == nil)
    }

    @Test func jsonTextRoundTrips() async {
        let leaves: [JSONValue] = [.null, true, false, 0, -7, 2.5, "", "é\"\n", .int(.min), 1e300]
        let leaf = Gen<JSONValue?>.element(of: leaves).map { $0 ?? .null }
        let generator = zip(leaf, leaf, leaf, Gen.letterOrNumber.string(of: 0...6)).map { a, b, c, name -> JSONValue in
            [name: [a, b], "x": ["y": c]]
        }
        await propertyCheck(input: generator) { value in
            #expect(JSONValue(parsing: Array(value.jsonText.utf8)) == value)
        }
    }
}
