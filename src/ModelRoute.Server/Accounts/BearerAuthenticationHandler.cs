using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using ModelRoute.Server.Http;

namespace ModelRoute.Server.Accounts;

/// <summary>
/// <c>Authorization: Bearer …</c> with either an account's API key or the operator's admin key.
/// Failures answer as problems; no key material is ever logged or echoed.
/// </summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    ApiKeyCache keys,
    ApiKeyUsage usage,
    TimeProvider time,
    IOptions<ModelRouteOptions> options) : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, loggerFactory, encoder)
{
    public const string SchemeName = "Bearer";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            return AuthenticateResult.NoResult();
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail("Not a bearer token.");
        }

        var token = header["Bearer ".Length..].Trim();
        if (options.Value.AdminKey is { Length: > 0 } adminKey && FixedTimeEquals(token, adminKey))
        {
            return Success(new Claim(ClaimTypes.Role, Claims.AdminRole));
        }

        if (!ApiKeys.LooksLikeKey(token) || await keys.FindAsync(ApiKeys.Hash(token), Context.RequestAborted) is not { } key)
        {
            return AuthenticateResult.Fail("Unknown key.");
        }

        // Checked at every request, from the cached key: a key stops working the moment it expires (docs/tenancy.md).
        var now = time.GetUtcNow();
        var refusal = key.Revoked ? "This API key was revoked."
            : key.ExpiresAt <= now ? "This API key has expired."
            : key.AccountDisabled ? DisabledDetail
            : null;
        if (refusal is not null)
        {
            Context.Items[RefusalItem] = refusal;
            return AuthenticateResult.Fail(refusal);
        }

        usage.Record(key.KeyId, now);
        return key.SpendLimited
            ? Success(new Claim(Claims.AccountIdType, key.AccountId), new Claim(Claims.ApiKeyIdType, key.KeyId), new Claim(Claims.SpendLimitedType, "true"))
            : Success(new Claim(Claims.AccountIdType, key.AccountId), new Claim(Claims.ApiKeyIdType, key.KeyId));
    }

    private const string RefusalItem = "modelroute:key_refusal";
    private const string DisabledDetail = "This account is disabled; its API keys are refused until the operator enables it.";

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var refusal = Context.Items[RefusalItem] as string;
        if (ReferenceEquals(refusal, DisabledDetail))
        {
            return new Problem(403, ErrorCodes.AccountDisabled, DisabledDetail).WriteAsync(Context);
        }

        Response.Headers.WWWAuthenticate = "Bearer";
        var detail = Request.Headers.Authorization.Count == 0
            ? "Send an API key: 'Authorization: Bearer mr_…'."
            : refusal ?? "The API key is not valid.";
        return new Problem(401, ErrorCodes.Unauthenticated, detail).WriteAsync(Context);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        var detail = Context.User.IsInRole(Claims.AdminRole)
            ? "This endpoint needs an account's API key; the admin key acts on accounts through /v1/admin."
            : string.IsNullOrEmpty(options.Value.AdminKey)
                ? "Admin endpoints are disabled: the operator has not set ModelRoute:AdminKey."
                : "This endpoint needs the admin key.";
        return new Problem(403, ErrorCodes.Forbidden, detail).WriteAsync(Context);
    }

    private AuthenticateResult Success(params Claim[] claims) =>
        AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName));

    private static bool FixedTimeEquals(string a, string b)
    {
        // Compare hashes so the length of the admin key does not leak through timing.
        var left = SHA256.HashData(Encoding.UTF8.GetBytes(a));
        var right = SHA256.HashData(Encoding.UTF8.GetBytes(b));
        return CryptographicOperations.FixedTimeEquals(left, right);
    }
}
