using Dapper;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>One batch of <c>POST /v1/admin/artifacts/move</c>: what moved, and where the next batch starts (null: done).</summary>
public sealed record ArtifactMoveView(int Executions, int Moved, int Missing, string? NextAfter);

/// <summary>
/// Moves artifacts kept on this node's disk into the configured S3 bucket, a bounded batch of executions per call, in id
/// order from a cursor (docs/artifacts.md#moving-file-artifacts-to-s3). Idempotent and resumable: an artifact is
/// uploaded, then its execution's row names the bucket (only if the row is unchanged), then the file is deleted; a batch
/// cut short anywhere is simply run again. Ended executions never change otherwise, so nothing else races the row.
/// </summary>
public sealed class ArtifactMoves(ISqlDialect dialect, ArtifactStores stores)
{
    public const int MaxBatch = 200;

    // Artifacts are JSON on their execution; those without a "store" are on disk (docs/artifacts.md#where-artifacts-are-kept).
    private const string OnDiskSql = """
        SELECT id AS Id, artifacts AS Artifacts FROM executions
        WHERE id > @after AND artifacts IS NOT NULL AND artifacts <> '[]' AND artifacts NOT LIKE '%"store":%'
        ORDER BY id LIMIT @limit
        """;

    private const string MovedSql = "UPDATE executions SET artifacts = @moved WHERE id = @id AND artifacts = @before";

    public async Task<ArtifactMoveView> MoveAsync(string after, int limit, CancellationToken cancellationToken)
    {
        var s3 = stores.S3!;
        var rows = await dialect.ReadAsync(async c => (await c.QueryAsync<(string Id, string Artifacts)>(OnDiskSql, new { after, limit })).AsList(), cancellationToken);
        int moved = 0, missing = 0;
        foreach (var (id, json) in rows)
        {
            var artifacts = StoreJson.Artifacts(json);
            var now = new List<Artifact>(artifacts.Count);
            foreach (var artifact in artifacts)
            {
                if (artifact.Store is not null || await stores.Files.ReadAsync(id, artifact.Name, cancellationToken) is not { } file)
                {
                    missing += artifact.Store is null ? 1 : 0;
                    now.Add(artifact); // Already elsewhere, or its file is gone: left as it is.
                    continue;
                }

                await using (file)
                {
                    now.Add(await ArtifactStores.SaveToAsync(s3, id, artifact.Name, artifact.ContentType, file, long.MaxValue, cancellationToken));
                }
            }

            var update = new { id, before = json, moved = StoreJson.Serialize(now) };
            if (await dialect.WriteAsync(async (c, tx) => (await c.ExecuteAsync(MovedSql, update, tx), true), cancellationToken) == 1)
            {
                moved += now.Count(a => a.Store == ArtifactStoreKinds.S3);
                now.Where(a => a.Store == ArtifactStoreKinds.S3).ToList().ForEach(a => stores.Files.Delete(id, a.Name));
            }
        }

        return new ArtifactMoveView(rows.Count, moved, missing, rows.Count == limit ? rows[^1].Id : null);
    }
}
