using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ModelRoute.Tests.Codebase;

/// <summary>
/// The house rules a newcomer relies on to find their way (docs/architecture.md): small files and methods, sealed
/// classes, a storage layer that only stores, and comments that cite the project's own documents.
/// </summary>
public sealed partial class CodebaseShapeTests
{
    private const int MaxFileLines = 600;
    private const int MaxMemberLines = 60;

    /// <summary>The product specification is not part of the repository: comments cite docs/ instead. Split so that this file does not cite it.</summary>
    private const string SpecCitation = "SPEC" + " §";

    private static readonly string Root = TestPaths.RepositoryRoot();

    private static readonly Lazy<IReadOnlyList<SourceFile>> Sources = new(() =>
        new[] { "src", "tests", "bench" }
            .Select(folder => Path.Combine(Root, folder))
            .Where(Directory.Exists)
            .SelectMany(folder => Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories))
            .Where(path => !path.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")
                && !path.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .Order(StringComparer.Ordinal)
            .Select(path => new SourceFile(Path.GetRelativePath(Root, path).Replace('\\', '/'), File.ReadAllText(path)))
            .ToList());

    [Fact]
    public void No_source_file_is_longer_than_600_lines()
    {
        var tooLong = Sources.Value
            .Select(file => (file.Path, Lines: file.Text.Split('\n').Length - (file.Text.EndsWith('\n') ? 1 : 0)))
            .Where(file => file.Lines > MaxFileLines)
            .Select(file => $"{file.Path}: {file.Lines} lines")
            .ToList();

        Sources.Value.Count.ShouldBeGreaterThan(100);
        tooLong.ShouldBeEmpty();
    }

    [Fact]
    public void No_method_constructor_local_function_or_accessor_is_longer_than_60_lines()
    {
        var tooLong = Sources.Value.SelectMany(file => LongMembers(file)).ToList();

        tooLong.ShouldBeEmpty();
    }

    [Fact]
    public void Every_class_is_sealed_static_or_abstract()
    {
        var open = Sources.Value
            .SelectMany(file => file.Syntax.GetRoot().DescendantNodes().OfType<ClassDeclarationSyntax>()
                .Where(type => !type.Modifiers.Any(m => m.IsKind(SyntaxKind.SealedKeyword) || m.IsKind(SyntaxKind.StaticKeyword) || m.IsKind(SyntaxKind.AbstractKeyword)))
                .Where(type => !IsPartOfSealedPartial(type))
                .Select(type => $"{file.Path}: class {type.Identifier.Text}"))
            .ToList();

        open.ShouldBeEmpty();
    }

    [Fact]
    public void Nothing_under_Storage_reaches_up_to_dispatch_or_webhook_delivery()
    {
        var upward = new Regex(@"\bRouting\.|ModelRoute\.Server\.Routing|\bDispatchHandoff\b|\bDispatcher\b|\bWebhookHandoff\b|\bWebhookDeliveryWorker\b");
        var offenders = Sources.Value
            .Where(file => file.Path.StartsWith("src/ModelRoute.Server/Storage/", StringComparison.Ordinal))
            .SelectMany(file => CodeLines(file).Where(line => upward.IsMatch(line.Text)).Select(line => $"{file.Path}:{line.Number}: {line.Text.Trim()}"))
            .ToList();

        offenders.ShouldBeEmpty();
    }

    [Fact]
    public void Comments_cite_the_projects_own_documents_and_every_cited_document_and_section_exists()
    {
        var spec = Sources.Value
            .SelectMany(file => file.Text.Split('\n').Select((text, i) => (text, i))
                .Where(line => line.text.Contains(SpecCitation, StringComparison.Ordinal))
                .Select(line => $"{file.Path}:{line.i + 1}"))
            .ToList();
        var citations = Sources.Value
            .SelectMany(file => DocCitation().Matches(file.Text).Select(match => (file.Path, Document: match.Groups["doc"].Value, Anchor: match.Groups["anchor"].Value)))
            .ToList();
        var broken = citations
            .Where(citation => !File.Exists(Path.Combine(Root, citation.Document))
                || (citation.Anchor.Length > 0 && !Anchors(citation.Document).Contains(citation.Anchor)))
            .Select(citation => $"{citation.Path}: {citation.Document}{(citation.Anchor.Length > 0 ? "#" + citation.Anchor : "")}")
            .Distinct()
            .ToList();

        spec.ShouldBeEmpty();
        citations.Count.ShouldBeGreaterThan(10);
        broken.ShouldBeEmpty();
    }

    private static IEnumerable<string> LongMembers(SourceFile file)
    {
        foreach (var node in file.Syntax.GetRoot().DescendantNodes())
        {
            var name = node switch
            {
                MethodDeclarationSyntax method => method.Identifier.Text,
                ConstructorDeclarationSyntax constructor => constructor.Identifier.Text + " (constructor)",
                BaseMethodDeclarationSyntax other => other.Kind().ToString(),
                LocalFunctionStatementSyntax local => local.Identifier.Text + " (local function)",
                AccessorDeclarationSyntax accessor => accessor.Keyword.Text + " accessor",
                PropertyDeclarationSyntax { ExpressionBody: not null } property => property.Identifier.Text,
                _ => null,
            };
            if (name is null)
            {
                continue;
            }

            var span = node.GetLocation().GetLineSpan();
            var lines = span.EndLinePosition.Line - span.StartLinePosition.Line + 1;
            if (lines > MaxMemberLines)
            {
                yield return $"{file.Path}:{span.StartLinePosition.Line + 1} {name}: {lines} lines";
            }
        }
    }

    private static bool IsPartOfSealedPartial(ClassDeclarationSyntax type) =>
        type.Modifiers.Any(m => m.IsKind(SyntaxKind.PartialKeyword))
        && Sources.Value.Any(file => file.Syntax.GetRoot().DescendantNodes().OfType<ClassDeclarationSyntax>()
            .Any(other => other.Identifier.Text == type.Identifier.Text && other.Modifiers.Any(m => m.IsKind(SyntaxKind.SealedKeyword))));

    /// <summary>The file's lines outside comments, for rules about what code refers to.</summary>
    private static IEnumerable<(int Number, string Text)> CodeLines(SourceFile file)
    {
        var root = file.Syntax.GetRoot();
        var withoutComments = root.ReplaceTrivia(
            root.DescendantTrivia().Where(trivia => trivia.IsKind(SyntaxKind.SingleLineCommentTrivia)
                || trivia.IsKind(SyntaxKind.MultiLineCommentTrivia)
                || trivia.IsKind(SyntaxKind.SingleLineDocumentationCommentTrivia)
                || trivia.IsKind(SyntaxKind.MultiLineDocumentationCommentTrivia)),
            (_, _) => default);
        return withoutComments.ToFullString().Split('\n').Select((text, i) => (i + 1, text));
    }

    /// <summary>GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens.</summary>
    private static HashSet<string> Anchors(string document) =>
        File.ReadLines(Path.Combine(Root, document))
            .Where(line => line.StartsWith('#'))
            .Select(line => AnchorPunctuation().Replace(line.TrimStart('#').Trim().ToLowerInvariant(), "").Replace(' ', '-'))
            .ToHashSet(StringComparer.Ordinal);

    [GeneratedRegex(@"(?<doc>(?:docs/[A-Za-z0-9_./-]+|README)\.md)(?:#(?<anchor>[a-z0-9-]+))?")]
    private static partial Regex DocCitation();

    [GeneratedRegex(@"[^\p{L}\p{Nd} _-]")]
    private static partial Regex AnchorPunctuation();

    private sealed record SourceFile(string Path, string Text)
    {
        private SyntaxTree? _syntax;

        public SyntaxTree Syntax => _syntax ??= CSharpSyntaxTree.ParseText(Text);
    }
}
