set terminal pngcairo size 900,520 noenhanced
set output 'passkey_rope.png'
set title 'passkey accuracy: rope (full attention, seeds pooled)'
set xlabel 'context length (bytes)'
set ylabel 'needle depth (share of the filler)'
set cbrange [0:1]
set cblabel 'exact-match accuracy'
set palette defined (0 '#b2182b', 0.5 '#f7f7f7', 1 '#2166ac')
set xrange [-0.5:4.5]
set yrange [-0.5:4.5]
set xtics ("256" 0, "512" 1, "1024" 2, "2048" 3, "4096" 4)
set ytics ("0" 0, "0.25" 1, "0.5" 2, "0.75" 3, "1" 4)
$acc << EOD
0 0 0.6500
0 1 0.8167
0 2 0.9000
0 3 0.9167
0 4 0.8167
1 0 0.1167
1 1 0.1500
1 2 0.2833
1 3 0.7167
1 4 0.7000
2 0 0.0000
2 1 0.0000
2 2 0.0000
2 3 0.0333
2 4 0.2167
3 0 0.0333
3 1 0.0333
3 2 0.0333
3 3 0.0333
3 4 0.0167
4 0 0.0000
4 1 0.0000
4 2 0.0000
4 3 0.0000
4 4 0.0167
EOD
plot $acc using 1:2:3 with image notitle, $acc using 1:2:(sprintf('%.2f', $3)) with labels notitle
