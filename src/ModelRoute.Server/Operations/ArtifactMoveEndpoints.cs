using ModelRoute.Server.Http;
using ModelRoute.Server.Storage.Artifacts;

namespace ModelRoute.Server.Operations;

/// <summary>The operator's command that moves file artifacts into S3 (docs/artifacts.md#moving-file-artifacts-to-s3).</summary>
public static class ArtifactMoveEndpoints
{
    public static void MapArtifactMoveEndpoints(this RouteGroupBuilder admin) =>
        admin.MapPost("/artifacts/move", MoveAsync)
            .Produces<ArtifactMoveView>()
            .ProducesProblem(400)
            .ProducesProblem(409)
            .WithName("moveArtifacts")
            .WithSummary("Move file artifacts into the S3 bucket")
            .WithDescription("Moves the artifacts kept on this node's disk into the S3 bucket, up to limit executions after the cursor; call again with next_after until it is null. 409 while Artifacts:Kind is file.");

    private static async Task<IResult> MoveAsync(ArtifactMoves moves, ArtifactStores stores, CancellationToken cancellationToken, string? after = null, int limit = 50)
    {
        if (stores.Kind != ArtifactStoreKinds.S3)
        {
            return new Problem(409, ErrorCodes.InvalidState, "Artifacts move only into an S3 bucket: set ModelRoute:Artifacts:Kind to 's3' first.").ToResult();
        }

        if (limit is < 1 or > ArtifactMoves.MaxBatch)
        {
            return Problem.Validation("limit", $"limit must be between 1 and {ArtifactMoves.MaxBatch}.").ToResult();
        }

        return TypedResults.Ok(await moves.MoveAsync(after ?? "", limit, cancellationToken));
    }
}
