namespace Orleans.MoE.Text.Chat;

/// <summary>
/// Parses the token stream into statements and expressions with Jinja2's grammar and operator precedence
/// (lowest first): <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons and <c>in</c>,
/// <c>+ -</c>, <c>~</c>, <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then filters, tests, calls, attributes and subscripts.
/// </summary>
internal sealed class Parser
{
    /// <summary>How deep expressions and blocks may nest: far beyond real templates, well within the stack.</summary>
    private const int MaxDepth = 100;

    private static readonly HashSet<string> s_compareOperators = new(StringComparer.Ordinal) { "==", "!=", "<", ">", "<=", ">=" };

    private readonly List<Token> _tokens;
    private readonly string _sourceName;
    private readonly Stack<string> _openBlocks = new();
    private int _index;
    private int _loopDepth;
    private int _depth;

    private Parser(List<Token> tokens, string sourceName)
    {
        _tokens = tokens;
        _sourceName = sourceName;
    }

    private Token Current => _tokens[_index];

    private Token Peek => _tokens[Math.Min(_index + 1, _tokens.Count - 1)];

    public static List<Stmt> Parse(string source, string sourceName)
    {
        var parser = new Parser(Lexer.Tokenize(source, sourceName), sourceName);
        return parser.Subparse([], out _);
    }

    private Token Next()
    {
        var token = _tokens[_index];
        if (token.Kind != TokenKind.End)
        {
            _index++;
        }

        return token;
    }

    private ChatTemplateException Error(Token token, string message) => new($"{_sourceName}:{token.Line}:{token.Column}: {message}");

    private Token Expect(TokenKind kind, string? text = null)
    {
        var token = Current;
        if (token.Kind != kind || (text is not null && token.Text != text))
        {
            var expected = text is not null ? $"'{text}'" : kind switch
            {
                TokenKind.BlockEnd => "end of statement block",
                TokenKind.VariableEnd => "end of print statement",
                TokenKind.Name => "a name",
                _ => kind.ToString().ToLowerInvariant(),
            };
            throw Error(token, $"expected {expected}, got {token.Describe()}");
        }

        return Next();
    }

    private void ExpectOperator(string op) => Expect(TokenKind.Operator, op);

    private List<Stmt> Subparse(string[] endTags, out string endTag)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.Data:
                    body.Add(new TextStmt((string)token.Value!, token.Line));
                    Next();
                    break;
                case TokenKind.VariableBegin:
                    Next();
                    body.Add(new OutputStmt(ParseTuple(), token.Line));
                    Expect(TokenKind.VariableEnd);
                    break;
                case TokenKind.BlockBegin:
                    Next();
                    var name = Current;
                    if (name.Kind != TokenKind.Name)
                    {
                        throw Error(name, $"tag name expected, got {name.Describe()}");
                    }

                    if (Array.IndexOf(endTags, name.Text) >= 0)
                    {
                        Next();
                        endTag = name.Text;
                        return body;
                    }

                    body.Add(ParseStatement(token));
                    break;
                case TokenKind.End:
                    if (endTags.Length > 0)
                    {
                        throw Error(token, $"unexpected end of template: '{_openBlocks.Peek()}' is not closed, expected {string.Join(" or ", endTags.Select(t => $"'{t}'"))}");
                    }

                    endTag = string.Empty;
                    return body;
                default:
                    throw Error(token, $"unexpected {token.Describe()}");
            }
        }
    }

    private List<Stmt> Block(string tag, string[] endTags, out string endTag)
    {
        if (_openBlocks.Count >= MaxDepth)
        {
            throw Error(Current, $"blocks nested more than {MaxDepth} levels deep");
        }

        _openBlocks.Push(tag);
        var body = Subparse(endTags, out endTag);
        _openBlocks.Pop();
        return body;
    }

    private Stmt ParseStatement(Token begin)
    {
        var name = Next();
        switch (name.Text)
        {
            case "if":
                return ParseIf(begin);
            case "for":
                return ParseFor(begin);
            case "set":
                return ParseSet(begin);
            case "macro":
                return ParseMacro(begin);
            case "call":
                return ParseCallBlock(begin);
            case "filter":
                var filters = ParseFilterChain();
                Expect(TokenKind.BlockEnd);
                var filtered = Block("filter", ["endfilter"], out _);
                Expect(TokenKind.BlockEnd);
                return new FilterBlockStmt(filters, filtered, begin.Line);
            case "break" or "continue":
                if (_loopDepth == 0)
                {
                    throw Error(name, $"'{name.Text}' outside of a loop");
                }

                Expect(TokenKind.BlockEnd);
                return new BreakStmt(name.Text == "break", begin.Line);
            case "generation":
                // transformers' AssistantTracker tag: marks assistant text for masks; rendering is unchanged.
                Expect(TokenKind.BlockEnd);
                var generated = Block("generation", ["endgeneration"], out _);
                Expect(TokenKind.BlockEnd);
                return new IfStmt([(new ConstExpr(true), generated)], [], begin.Line);
            default:
                var context = _openBlocks.Count > 0 ? $" (inside '{_openBlocks.Peek()}')" : string.Empty;
                throw Error(name, $"encountered unknown tag '{name.Text}'{context}");
        }
    }

    private IfStmt ParseIf(Token begin)
    {
        var branches = new List<(Expr, List<Stmt>)>();
        var test = ParseTuple(withCondition: false);
        Expect(TokenKind.BlockEnd);
        while (true)
        {
            var body = Block("if", ["elif", "else", "endif"], out var end);
            branches.Add((test, body));
            if (end == "elif")
            {
                test = ParseTuple(withCondition: false);
                Expect(TokenKind.BlockEnd);
                continue;
            }

            Expect(TokenKind.BlockEnd);
            List<Stmt> otherwise = [];
            if (end == "else")
            {
                otherwise = Block("if", ["endif"], out _);
                Expect(TokenKind.BlockEnd);
            }

            return new IfStmt(branches, otherwise, begin.Line);
        }
    }

    private ForStmt ParseFor(Token begin)
    {
        var target = ParseAssignTarget(["in"], withNamespace: false);
        Expect(TokenKind.Name, "in");
        var iterable = ParseTuple(withCondition: false, extraEnd: ["recursive", "if"]);
        Expr? condition = null;
        if (Current.IsName("if"))
        {
            Next();
            condition = ParseExpression();
        }

        if (Current.IsName("recursive"))
        {
            throw Error(Current, "recursive for loops are not supported");
        }

        Expect(TokenKind.BlockEnd);
        _loopDepth++;
        var body = Block("for", ["endfor", "else"], out var end);
        _loopDepth--;
        Expect(TokenKind.BlockEnd);
        List<Stmt> otherwise = [];
        if (end == "else")
        {
            otherwise = Block("for", ["endfor"], out _);
            Expect(TokenKind.BlockEnd);
        }

        return new ForStmt(target, iterable, condition, body, otherwise, begin.Line);
    }

    private Stmt ParseSet(Token begin)
    {
        var target = ParseAssignTarget([], withNamespace: true);
        if (Current.IsOperator("="))
        {
            Next();
            var value = ParseTuple();
            Expect(TokenKind.BlockEnd);
            return new SetStmt(target, value, begin.Line);
        }

        var filters = Current.IsOperator("|") ? ParseFilterChain() : [];
        Expect(TokenKind.BlockEnd);
        var body = Block("set", ["endset"], out _);
        Expect(TokenKind.BlockEnd);
        return new SetBlockStmt(target, filters, body, begin.Line);
    }

    private MacroStmt ParseMacro(Token begin)
    {
        var name = Expect(TokenKind.Name).Text;
        var parameters = ParseParameters();
        Expect(TokenKind.BlockEnd);
        var loops = _loopDepth;
        _loopDepth = 0;
        var body = Block("macro", ["endmacro"], out _);
        _loopDepth = loops;
        Expect(TokenKind.BlockEnd);
        return new MacroStmt(name, parameters, body, begin.Line);
    }

    private CallBlockStmt ParseCallBlock(Token begin)
    {
        var parameters = Current.IsOperator("(") ? ParseParameters() : [];
        var start = Current;
        if (ParseExpression() is not CallExpr call)
        {
            throw Error(start, "expected a call after 'call'");
        }

        Expect(TokenKind.BlockEnd);
        var body = Block("call", ["endcall"], out _);
        Expect(TokenKind.BlockEnd);
        return new CallBlockStmt(call, parameters, body, begin.Line);
    }

    private List<MacroParameter> ParseParameters()
    {
        ExpectOperator("(");
        var parameters = new List<MacroParameter>();
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator(")"))
                {
                    break;
                }
            }

            var name = Expect(TokenKind.Name);
            Expr? fallback = null;
            if (Current.IsOperator("="))
            {
                Next();
                fallback = ParseExpression();
            }
            else if (parameters.Count > 0 && parameters[^1].Default is not null)
            {
                throw Error(name, "non-default argument follows default argument");
            }

            parameters.Add(new MacroParameter(name.Text, fallback));
        }

        ExpectOperator(")");
        return parameters;
    }

    private Target ParseAssignTarget(string[] extraEnd, bool withNamespace)
    {
        if (withNamespace && Current.Kind == TokenKind.Name && Peek.IsOperator("."))
        {
            var ns = Next().Text;
            Next();
            return new NamespaceTarget(ns, Expect(TokenKind.Name).Text);
        }

        var start = Current;
        return ToTarget(ParseTuple(simplified: true, extraEnd: extraEnd), start);
    }

    private Target ToTarget(Expr expression, Token at) =>
        expression switch
        {
            NameExpr name when name.Name is not ("true" or "false" or "none") => new NameTarget(name.Name),
            TupleExpr tuple => new TupleTarget(tuple.Items.Select(item => ToTarget(item, at)).ToList()),
            _ => throw Error(at, "cannot assign to this expression"),
        };

    private bool IsTupleEnd(string[] extraEnd) =>
        Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd or TokenKind.End
        || Current.IsOperator(")")
        || (Current.Kind == TokenKind.Name && Array.IndexOf(extraEnd, Current.Text) >= 0);

    private Expr ParseTuple(bool simplified = false, bool withCondition = true, string[]? extraEnd = null, bool explicitParentheses = false)
    {
        extraEnd ??= [];
        var start = Current;
        var items = new List<Expr>();
        var isTuple = false;
        while (true)
        {
            if (items.Count > 0)
            {
                ExpectOperator(",");
            }

            if (IsTupleEnd(extraEnd))
            {
                break;
            }

            items.Add(simplified ? ParsePrimary() : withCondition ? ParseExpression() : ParseOr());
            if (Current.IsOperator(","))
            {
                isTuple = true;
            }
            else
            {
                break;
            }
        }

        if (!isTuple)
        {
            if (items.Count == 1)
            {
                return items[0];
            }

            if (!explicitParentheses)
            {
                throw Error(start, $"expected an expression, got {start.Describe()}");
            }
        }

        return new TupleExpr(items);
    }

    private Expr ParseExpression() => ParseConditional();

    /// <summary>Runs one level of a recursive descent, failing (instead of overflowing the stack) past <see cref="MaxDepth"/>.</summary>
    private Expr Nested(Func<Expr> parse)
    {
        if (++_depth > MaxDepth)
        {
            throw Error(Current, $"expression nested more than {MaxDepth} levels deep");
        }

        var expression = parse();
        _depth--;
        return expression;
    }

    private Expr ParseConditional()
    {
        var expression = ParseOr();
        while (Current.IsName("if"))
        {
            var token = Next();
            var test = ParseOr();
            Expr? otherwise = null;
            if (Current.IsName("else"))
            {
                Next();
                otherwise = ParseConditional();
            }

            expression = new ConditionalExpr(test, expression, otherwise, token.Line);
        }

        return expression;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            Next();
            left = new OrExpr(left, ParseAnd());
        }

        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            Next();
            left = new AndExpr(left, ParseNot());
        }

        return left;
    }

    private Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            Next();
            return new UnaryExpr("not", Nested(ParseNot));
        }

        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && s_compareOperators.Contains(Current.Text))
            {
                var op = Next().Text;
                rest.Add((op, ParseMath1()));
            }
            else if (Current.IsName("in"))
            {
                Next();
                rest.Add(("in", ParseMath1()));
            }
            else if (Current.IsName("not") && Peek.IsName("in"))
            {
                Next();
                Next();
                rest.Add(("not in", ParseMath1()));
            }
            else
            {
                break;
            }
        }

        return rest.Count == 0 ? first : new CompareExpr(first, rest);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            var op = Next().Text;
            left = new BinaryExpr(op, left, ParseConcat());
        }

        return left;
    }

    private Expr ParseConcat()
    {
        var parts = new List<Expr> { ParseMath2() };
        while (Current.IsOperator("~"))
        {
            Next();
            parts.Add(ParseMath2());
        }

        return parts.Count == 1 ? parts[0] : new ConcatExpr(parts);
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Text is "*" or "/" or "//" or "%")
        {
            var op = Next().Text;
            left = new BinaryExpr(op, left, ParsePow());
        }

        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        while (Current.IsOperator("**"))
        {
            Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true));
        }

        return left;
    }

    private Expr ParseUnary(bool withFilter) => Nested(() => ParseUnaryLevel(withFilter));

    private Expr ParseUnaryLevel(bool withFilter)
    {
        Expr node;
        if (Current.IsOperator("-") || Current.IsOperator("+"))
        {
            var op = Next().Text;
            node = new UnaryExpr(op, ParseUnary(withFilter: false));
        }
        else
        {
            node = ParsePrimary();
        }

        node = ParsePostfix(node);
        return withFilter ? ParseFilterExpression(node) : node;
    }

    private Expr ParsePrimary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Name:
                Next();
                return token.Text switch
                {
                    "true" or "True" => new ConstExpr(true),
                    "false" or "False" => new ConstExpr(false),
                    "none" or "None" => new ConstExpr(null),
                    _ => new NameExpr(token.Text),
                };
            case TokenKind.String:
                var text = (string)Next().Value!;
                while (Current.Kind == TokenKind.String)
                {
                    text += (string)Next().Value!;
                }

                return new ConstExpr(text);
            case TokenKind.Integer or TokenKind.Float:
                return new ConstExpr(Next().Value);
            case TokenKind.Operator when token.Text == "(":
                Next();
                var inner = ParseTuple(explicitParentheses: true);
                ExpectOperator(")");
                return inner;
            case TokenKind.Operator when token.Text == "[":
                return ParseList();
            case TokenKind.Operator when token.Text == "{":
                return ParseDict();
            default:
                throw Error(token, $"unexpected {token.Describe()}");
        }
    }

    private ListExpr ParseList()
    {
        ExpectOperator("[");
        var items = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (items.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator("]"))
                {
                    break;
                }
            }

            items.Add(ParseExpression());
        }

        ExpectOperator("]");
        return new ListExpr(items);
    }

    private DictExpr ParseDict()
    {
        ExpectOperator("{");
        var pairs = new List<(Expr, Expr)>();
        while (!Current.IsOperator("}"))
        {
            if (pairs.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator("}"))
                {
                    break;
                }
            }

            var key = ParseExpression();
            ExpectOperator(":");
            pairs.Add((key, ParseExpression()));
        }

        ExpectOperator("}");
        return new DictExpr(pairs);
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator(".") || Current.IsOperator("["))
            {
                node = ParseSubscript(node);
            }
            else if (Current.IsOperator("("))
            {
                node = new CallExpr(node, ParseArguments());
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseFilterExpression(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator("|"))
            {
                Next();
                node = new FilterExpr(node, ParseFilter());
            }
            else if (Current.IsName("is"))
            {
                node = ParseTest(node);
            }
            else if (Current.IsOperator("("))
            {
                node = new CallExpr(node, ParseArguments());
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseSubscript(Expr node)
    {
        var token = Next();
        if (token.Text == ".")
        {
            var name = Current;
            if (name.Kind == TokenKind.Name)
            {
                Next();
                return new AttributeExpr(node, name.Text);
            }

            if (name.Kind == TokenKind.Integer)
            {
                Next();
                return new ItemExpr(node, new ConstExpr(name.Value));
            }

            throw Error(name, $"expected name or number after '.', got {name.Describe()}");
        }

        var keys = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (keys.Count > 0)
            {
                ExpectOperator(",");
            }

            keys.Add(ParseSubscribed());
        }

        ExpectOperator("]");
        return new ItemExpr(node, keys.Count == 1 ? keys[0] : new TupleExpr(keys));
    }

    private Expr ParseSubscribed()
    {
        Expr? start = null;
        if (!Current.IsOperator(":"))
        {
            start = ParseExpression();
            if (!Current.IsOperator(":"))
            {
                return start;
            }
        }

        Next();
        Expr? stop = null;
        Expr? step = null;
        if (!Current.IsOperator(":") && !Current.IsOperator("]") && !Current.IsOperator(","))
        {
            stop = ParseExpression();
        }

        if (Current.IsOperator(":"))
        {
            Next();
            if (!Current.IsOperator("]") && !Current.IsOperator(","))
            {
                step = ParseExpression();
            }
        }

        return new SliceExpr(start, stop, step);
    }

    private Arguments ParseArguments()
    {
        ExpectOperator("(");
        var positional = new List<Expr>();
        var named = new List<(string, Expr)>();
        while (!Current.IsOperator(")"))
        {
            if (positional.Count + named.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator(")"))
                {
                    break;
                }
            }

            if (Current.IsOperator("*") || Current.IsOperator("**"))
            {
                throw Error(Current, "*args and **kwargs in calls are not supported");
            }

            if (Current.Kind == TokenKind.Name && Peek.IsOperator("="))
            {
                var name = Next().Text;
                Next();
                named.Add((name, ParseExpression()));
            }
            else
            {
                if (named.Count > 0)
                {
                    throw Error(Current, "positional argument follows keyword argument");
                }

                positional.Add(ParseExpression());
            }
        }

        ExpectOperator(")");
        return new Arguments(positional, named);
    }

    private string ParseDottedName()
    {
        var name = Expect(TokenKind.Name).Text;
        while (Current.IsOperator("."))
        {
            Next();
            name += "." + Expect(TokenKind.Name).Text;
        }

        return name;
    }

    private FilterCall ParseFilter()
    {
        var token = Current;
        var name = ParseDottedName();
        var filter = Filters.Find(name) ?? throw Error(token, $"no filter named '{name}'");
        return new FilterCall(filter, Current.IsOperator("(") ? ParseArguments() : Arguments.None);
    }

    private List<FilterCall> ParseFilterChain()
    {
        var filters = new List<FilterCall>();
        if (Current.IsOperator("|"))
        {
            Next();
        }

        filters.Add(ParseFilter());
        while (Current.IsOperator("|"))
        {
            Next();
            filters.Add(ParseFilter());
        }

        return filters;
    }

    private TestExpr ParseTest(Expr node)
    {
        Next();
        var negated = false;
        if (Current.IsName("not"))
        {
            Next();
            negated = true;
        }

        var token = Current;
        var name = ParseDottedName();
        var test = JinjaTests.Find(name) ?? throw Error(token, $"no test named '{name}'");
        Arguments arguments;
        if (Current.IsOperator("("))
        {
            arguments = ParseArguments();
        }
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
                     || Current.IsOperator("(") || Current.IsOperator("[") || Current.IsOperator("{"))
                 && !(Current.IsName("else") || Current.IsName("or") || Current.IsName("and")))
        {
            if (Current.IsName("is"))
            {
                throw Error(Current, "you cannot chain multiple tests with is");
            }

            arguments = new Arguments([ParsePostfix(ParsePrimary())], []);
        }
        else
        {
            arguments = Arguments.None;
        }

        return new TestExpr(node, test, arguments, negated);
    }
}
