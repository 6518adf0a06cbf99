import streamlit as st

st.title("DLQ")
