namespace ModelRoute.Server.Http.OpenApi;

// Shapes of answers that their handlers write as anonymous objects, named here so that the OpenAPI
// document describes them (docs/api.md#openapi-and-the-reference-page).

/// <summary>The readiness answer: <c>ready</c>, or <c>store unavailable</c> with 503.</summary>
public sealed record ReadinessView(string Status);

/// <summary>The account's default webhook signing secret.</summary>
public sealed record WebhookSecretView(string Object, string Secret);

/// <summary>What a deletion answers with.</summary>
public sealed record DeletedView(string Id, string Object, bool Deleted);
