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

    my $page = page(
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

    my $p = sprintf('%.1f', $a{percent});
    my $cap = fmt_gb($capacity, 0);
    my $use = fmt_gb($used, 1);

    my $welcome = defined $a{user} && $a{user} ne ''
        ? '<p id="welcome">ようこそ ' . esc($a{user}) . " さん</p>\n"
        : '';

    my $warning = $a{percent} > $warn
        ? '<p id="warning" class="warning">ディスク使用率が '
            . esc(fmt_num($warn))
            . " %を超えています。すぐに空きディスク容量を確保してください。</p>\n"
        : '';

    my $ids = join '', map { esc("$_->[0]: $_->[1]") . "\n" } @{ $a{identity} };

    my $req = esc("$a{method} $a{target}");

    return <<"EOF";
<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<title>サービス TOP</title>
</head>
<body>
<h1>サービス TOP</h1>
$welcome<h2>お知らせ</h2>
<table id="usage">
<tr><th>ご契約ディスク容量</th><th>ご利用データ量</th><th>使用率(%)</th></tr>
<tr><td>$cap</td><td>$use</td><td>$p</td></tr>
</table>
$warning<h2>Request</h2>
<pre id="request">$req</pre>
<h2>Identity headers</h2>
<pre id="identity-headers">$ids</pre>
</body>
</html>
EOF
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
