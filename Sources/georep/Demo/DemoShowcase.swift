import Foundation
import GeorepModel
import GeorepNode

/// The demo's guided reads: read-your-writes across regions with a token, and a region-pinned
/// row read from another region.
struct DemoShowcase {
    let deployment: LocalDeployment
    let client: NodeHTTPClient

    func run() async throws {
        try await readYourWrites()
        print("")
        try await pinnedRow()
    }

    /// Writes a region-pinned row at eu-west-1 and reads it at us-east-1 through the directory.
    private func pinnedRow() async throws {
        let (home, elsewhere) = (LocalDeployment.regions[1], LocalDeployment.regions[0])
        let path = NodeHTTPClient.rowPath("user_pii", "7")
        let written = try await client.send("PUT", deployment.address(home), path, json: ["email": "ann@example.eu"])
        guard written.status == 200 else { throw DemoError("the pinned write at \(home) failed: \(written.status) \(written.error ?? "")") }
        print("   PUT \(home) \(path) {\"email\": \"ann@example.eu\"}  → stored only in \(home); georep.directory carries its claim, without content")
        // Every region applies the claim from georep.directory.
        let deadline = ContinuousClock.now + .seconds(10)
        while try await deployment.nodes[elsewhere]!.store.pinnedHome(table: "user_pii", key: ["user_id": 7]) == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let read = try await client.send("GET", deployment.address(elsewhere), path)
        let stored = try await deployment.nodes[elsewhere]!.store.snapshot(table: "user_pii").count
        print("   GET \(elsewhere) \(path) → \(read.status) \(read.json?.jsonText ?? read.error ?? ""), georep-routed-to: \(read.headers["georep-routed-to"] ?? "-"), served by \(read.servedBy ?? "?"); user_pii rows stored at \(elsewhere): \(stored)")
        guard read.status == 200, read.headers["georep-routed-to"] == home, stored == 0 else {
            throw DemoError("the pinned row was not read through its home region")
        }
    }

    /// Writes at us-east-1, then reads at once at eu-west-1, without and with the write's token.
    private func readYourWrites() async throws {
        let (writer, reader) = (LocalDeployment.regions[0], LocalDeployment.regions[1])
        let path = NodeHTTPClient.rowPath("user_profile", "424242")
        let value = "Ann, edited at \(Date().formatted(.iso8601.time(includingFractionalSeconds: true)))"
        let written = try await client.send("PUT", deployment.address(writer), path, json: ["display_name": .string(value)])
        guard written.status == 200, let token = written.token else {
            throw DemoError("the showcase write at \(writer) failed: \(written.status) \(written.error ?? "")")
        }
        print("   PUT \(writer) \(path) {\"display_name\": \"\(value)\"}  → georep-token \(token)")
        let plain = try await client.send("GET", deployment.address(reader), path)
        print("   GET \(reader) without the token → \(describe(plain, expected: value))")
        let start = ContinuousClock.now
        let checked = try await client.send("GET", deployment.address(reader), path, headers: ["georep-token": token])
        let millis = (ContinuousClock.now - start).milliseconds
        print("   GET \(reader) with the token    → \(describe(checked, expected: value)), georep-served-by: \(checked.servedBy ?? "?") in \(millis) ms")
        guard checked.status == 200, checked.json?.objectValue?["display_name"]?.stringValue == value else {
            throw DemoError("read-your-writes failed: \(checked.status) \(checked.error ?? "")")
        }
    }

    private func describe(_ reply: NodeHTTPClient.Reply, expected: String) -> String {
        guard reply.status == 200 else { return "\(reply.status) (\(reply.error ?? "no body")): not replicated yet" }
        let seen = reply.json?.objectValue?["display_name"]?.stringValue ?? "?"
        return seen == expected ? "the new value" : "a stale value \"\(seen)\""
    }
}

/// A failure of the demo itself.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
