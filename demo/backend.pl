#!/usr/bin/perl

# The demo "ecodoc" backend: answers every request with the manual's
# "サービス TOP" page, and lists the X-Ecodoc-* request headers it received
# so that tests (and curious humans) can see exactly what nginx passed on.
#
#   perl demo/backend.pl PORT [COUNTER_FILE]
#
# Environment:
#   ECODOC_DEMO_CAPACITY_GB   contract capacity in GB      (default 150)
#   ECODOC_DEMO_USED_GB       data used in GB              (default 55.0)
#   ECODOC_DEMO_WARN_PERCENT  warn when use exceeds this % (default 10)
#   ECODOC_DEMO_WORKERS       preforked worker processes   (default 4)
#
# Core Perl only. HTTP/1.0, one request per connection. Listens on
# 127.0.0.1 only. COUNTER_FILE, when given, holds the number of requests
# answered so far (updated under flock by every worker).

use strict;
use warnings;
use utf8;

use IO::Socket::INET;
use Fcntl qw(:flock O_RDWR O_CREAT);
use POSIX ();

my ($port, $counter) = @ARGV;
die "usage: $0 PORT [COUNTER_FILE]\n"
    unless defined $port && $port =~ /^\d+$/ && $port > 0 && $port < 65536;

my $capacity = num_env('ECODOC_DEMO_CAPACITY_GB', 150);
my $used     = num_env('ECODOC_DEMO_USED_GB', 55.0);
my $warn     = num_env('ECODOC_DEMO_WARN_PERCENT', 10);
my $workers  = int(num_env('ECODOC_DEMO_WORKERS', 4)) || 1;

my $listen = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1',
    LocalPort => $port,
    Proto     => 'tcp',
    Listen    => 128,
    ReuseAddr => 1,
) or die "backend: cannot listen on 127.0.0.1:$port: $@\n";

if (defined $counter && !-e $counter) {
    write_counter(0);
}

$SIG{PIPE} = 'IGNORE';

my %kids;
my $parent = $$;
my $stopping = 0;

$SIG{TERM} = $SIG{INT} = $SIG{HUP} = sub {
    $stopping = 1;
    if ($$ == $parent) {
        kill 'TERM', keys %kids;
    } else {
        POSIX::_exit(0);
    }
};

for (1 .. $workers) {
    spawn();
}

# the parent only keeps the pool full
while (!$stopping) {
    my $pid = waitpid(-1, 0);
    last if $pid < 0;
    next unless delete $kids{$pid};
    spawn() unless $stopping;
}
kill 'TERM', keys %kids;
1 while waitpid(-1, 0) > 0;
exit 0;

###############################################################################

sub spawn {
    my $pid = fork();
    die "backend: fork: $!\n" unless defined $pid;
    if ($pid) {
        $kids{$pid} = 1;
        return;
    }
    %kids = ();
    serve();
    POSIX::_exit(0);
}

sub serve {
    while (!$stopping) {
        my $c = $listen->accept() or next;
        eval { handle($c); 1 };
        close $c;
    }
}

sub handle {
    my ($c) = @_;

    my ($line, @headers);
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    eval {
        $line = <$c>;
        while (defined(my $h = <$c>)) {
            $h =~ s/\r?\n\z//;
            last if $h eq '';
            if ($h =~ /^[ \t]/ && @headers) {
                $h =~ s/^[ \t]+//;
                $headers[-1][1] .= " $h";
                next;
            }
            my ($n, $v) = $h =~ /^([^:]*):[ \t]*(.*?)[ \t]*\z/ or next;
            push @headers, [$n, $v];
        }
        # swallow a (small) body so the client does not see a reset
        my ($len) = map { $_->[1] } grep { lc $_->[0] eq 'content-length' }
            @headers;
        if (defined $len && $len =~ /^\d+$/ && $len > 0) {
            $len = 1 << 20 if $len > 1 << 20;
            my $buf;
            while ($len > 0) {
                my $n = read($c, $buf, $len > 65536 ? 65536 : $len);
                last unless $n;
                $len -= $n;
            }
        }
    };
    alarm 0;
    return unless defined $line;    # client went away before a request

    $line =~ s/\r?\n\z//;
    my ($method, $target) = split / /, $line;
    $method = '' unless defined $method;
    $target = '' unless defined $target;

    my ($user) = map { $_->[1] } grep { lc $_->[0] eq 'x-ecodoc-user' }
        @headers;

    my @identity = grep {
        (my $n = lc $_->[0]) =~ tr/_/-/;
        $n =~ /^x-ecodoc-/;
    } @headers;

    my $percent = $capacity > 0 ? $used * 100 / $capacity : 0;

    my ($al) = map { $_->[1] } grep { lc $_->[0] eq 'accept-language' }
        @headers;

    my $page = page(
        en       => english($al),
        user     => $user,
        identity => \@identity,
        method   => $method,
        target   => $target,
        percent  => $percent,
    );

    my $n = bump_counter();

    my $body = $page;
    utf8::encode($body);
    my $head = "HTTP/1.0 200 OK\r\n"
        . "Content-Type: text/html; charset=utf-8\r\n"
        . "Content-Length: " . length($body) . "\r\n"
        . "Cache-Control: no-store\r\n"
        . "X-Backend-Request: $n\r\n"
        . "Connection: close\r\n\r\n";

    $body = '' if $method eq 'HEAD';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    eval {
        print {$c} $head, $body;    # errors (client gone) are ignored
        1;
    };
    alarm 0;
}

sub page {
    my (%a) = @_;

    # the texts: Japanese (the manual's) and English
    my %TEXT = (
        service  => ['エコ文書サービス', 'Ecodoc document service'],
        top      => ['サービス TOP', 'Service top'],
        logout   => ['ログアウト', 'Log out'],
        notices  => ['お知らせ', 'Notices'],
        capacity => ['ご契約ディスク容量', 'Contracted disk capacity'],
        used     => ['ご利用データ量', 'Data used'],
        percent  => ['使用率(%)', 'Usage (%)'],
    );

    my $en = $a{en} ? 1 : 0;
    my %t = map { $_ => $TEXT{$_}[$en] } keys %TEXT;
    my $lang = $en ? 'en' : 'ja';

    my $p = sprintf('%.1f', $a{percent});
    my $cap = fmt_gb($capacity, 0);
    my $use = fmt_gb($used, 1);

    my $welcome = '';
    if (defined $a{user} && $a{user} ne '') {
        $welcome = $en
            ? '<p id="welcome">Welcome, ' . esc($a{user}) . "</p>\n"
            : '<p id="welcome">ようこそ ' . esc($a{user}) . " さん</p>\n";
    }

    my $w = esc(fmt_num($warn));
    my $warning = $a{percent} <= $warn ? ''
        : $en
        ? qq{<p id="warning" class="warning">Disk usage is over $w %. }
            . "Please free up disk space now.</p>\n"
        : qq{<p id="warning" class="warning">ディスク使用率が $w}
            . " %を超えています。すぐに空きディスク容量を確保してください。</p>\n";

    my $ids = join '', map { esc("$_->[0]: $_->[1]") . "\n" } @{ $a{identity} };

    my $req = esc("$a{method} $a{target}");

    # the look of the gate's own pages (ngx_http_ecodoc_html.c)
    return <<"EOF";
<!DOCTYPE html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$t{top} | $t{service}</title>
<style>
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI","Hiragino Sans","Noto Sans CJK JP",sans-serif;background:#f3f5f7;color:#1b1f23;line-height:1.6}
header{background:#0b3d6e;color:#fff;padding:.8rem 1.2rem;font-weight:bold;display:flex;justify-content:space-between;align-items:center;gap:1rem}
header a{color:#fff;font-weight:normal}
main{max-width:44rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin-top:0}
h2{font-size:1.15rem;margin:1.6rem 0 .6rem}
a:focus{outline:3px solid #f0b429;outline-offset:2px}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #77818b;padding:.5rem .7rem}
th{background:#e8edf2;text-align:center}
td{text-align:right;font-variant-numeric:tabular-nums}
.warning{background:#fff4e5;border-left:4px solid #d9480f;color:#7a2e00;font-weight:bold;padding:.8rem}
pre{white-space:pre-wrap;word-break:break-all;background:#f3f5f7;padding:.8rem;border-radius:4px;font-size:.85rem}
\@media (max-width:36rem){main{margin:0;border-radius:0;padding:1rem}th,td{padding:.4rem}}
</style>
</head>
<body>
<header><span>$t{service}</span><a href="/ecodoc/logout">$t{logout}</a></header>
<main>
<h1>$t{top}</h1>
$welcome<h2>$t{notices}</h2>
<table id="usage">
<tr><th scope="col">$t{capacity}</th><th scope="col">$t{used}</th><th scope="col">$t{percent}</th></tr>
<tr><td>$cap</td><td>$use</td><td>$p</td></tr>
</table>
$warning<h2>Request</h2>
<pre id="request">$req</pre>
<h2>Identity headers</h2>
<pre id="identity-headers">$ids</pre>
</main>
</body>
</html>
EOF
}

# true when Accept-Language prefers English to Japanese (as the gate and
# the enrollment site decide)
sub english {
    my ($al) = @_;
    return 0 unless defined $al;
    my ($en, $ja) = (lang_q($al, 'en'), lang_q($al, 'ja'));
    return $en > 0 && $en > $ja;
}

# the q of a language range in Accept-Language, in 1000ths; -1 when absent
sub lang_q {
    my ($al, $lang) = @_;
    my $best = -1;
    for my $item (split /,/, $al) {
        $item =~ s/^[ \t]+//;
        next unless $item =~ /^\Q$lang\E(?:[-; ]|\z)/i;
        my $q = 1000;
        if ($item =~ /;[ ]*q=([0-9.]*)/i) {
            my $v = $1;
            $q = ($v =~ /^\d*\.?\d+$|^\d+\.$/ && $v >= 0 && $v <= 1)
                ? int($v * 1000) : 0;
        }
        $best = $q if $q > $best;
    }
    return $best;
}

sub bump_counter {
    return 0 unless defined $counter;
    sysopen(my $fh, $counter, O_RDWR | O_CREAT) or return 0;
    flock($fh, LOCK_EX) or return 0;
    my $old = <$fh>;
    my $n = (defined $old && $old =~ /^(\d+)/ ? $1 : 0) + 1;
    seek($fh, 0, 0);
    truncate($fh, 0);
    print {$fh} "$n\n";
    close $fh;    # also releases the lock
    return $n;
}

sub write_counter {
    my ($n) = @_;
    open(my $fh, '>', $counter) or die "backend: $counter: $!\n";
    print {$fh} "$n\n";
    close $fh;
}

sub num_env {
    my ($name, $default) = @_;
    my $v = $ENV{$name};
    return $default unless defined $v && $v =~ /^\d+(?:\.\d+)?\z/;
    return $v + 0;
}

sub fmt_gb {
    my ($v, $decimals) = @_;
    return ($decimals || $v != int($v) ? sprintf('%.1f', $v) : int($v)) . 'GB';
}

sub fmt_num {
    my ($v) = @_;
    return $v == int($v) ? int($v) : $v;
}

sub esc {
    my ($s) = @_;
    $s = '' unless defined $s;
    # bytes from the wire: show them as UTF-8 if they are, else as-is
    utf8::decode($s) unless utf8::is_utf8($s);
    $s =~ s/&/&amp;/g;
    $s =~ s/</&lt;/g;
    $s =~ s/>/&gt;/g;
    $s =~ s/"/&quot;/g;
    $s =~ s/'/&#39;/g;
    $s =~ s/([\x00-\x08\x0b\x0c\x0e-\x1f\x7f])/sprintf('&#%d;', ord $1)/ge;
    return $s;
}
